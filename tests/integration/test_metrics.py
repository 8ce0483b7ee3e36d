"""`/metrics` (issue 14): Prometheus text with connections, listed peers, relays,
errors by code, calls by size; readable from this machine, or with METRICS_TOKEN."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import allowed
from tests.support.liveserver import StartServer
from tests.support.rtcclient import RtcClient


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_what_happens(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server()
    ann = await RtcClient.connect(http, live.ws_url, "Ann")
    bob = await RtcClient.connect(http, live.ws_url, "Bob")
    await ann.expect("peer")
    await ann.send({"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": bob.id}})
    await bob.send({"type": "accept", "data": {"type": "answer", "sdp": "v=0", "target": ann.id}})
    await ann.send({"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": "nobody"}})
    await ann.send("{broken")
    await bob.expect("peer")
    await bob.expect("offer")
    assert sorted([(await ann.recv())["type"] for _ in range(3)]) == ["accept", "error", "error"]
    async with http.get(live.url + "metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        got = samples(await resp.text())
    assert got[("lan_call_connections", ())] == 2
    assert got[("lan_call_listed_peers", ())] == 2
    assert got[("lan_call_relays_total", ())] == 2
    assert got[("lan_call_errors_total", (("code", "unknown-peer"),))] == 1
    assert got[("lan_call_errors_total", (("code", "bad-json"),))] == 1
    assert got[("lan_call_calls", (("size", "2"),))] == 1
    assert got[("lan_call_calls", (("size", "3"),))] == 0


def test_who_may_read_the_metrics() -> None:
    class Request:
        def __init__(self, remote: str, auth: str | None = None) -> None:
            self.remote = remote
            self.headers = {"Authorization": auth} if auth else {}

    assert allowed(Request("127.0.0.1"), None)  # type: ignore[arg-type]
    assert allowed(Request("::1"), None)  # type: ignore[arg-type]
    assert not allowed(Request("192.168.1.20"), None)  # type: ignore[arg-type]
    assert not allowed(Request("192.168.1.20", "Bearer s3cret"), None)  # type: ignore[arg-type]
    assert allowed(Request("192.168.1.20", "Bearer s3cret"), "s3cret")  # type: ignore[arg-type]
    assert not allowed(Request("192.168.1.20", "Bearer wrong"), "s3cret")  # type: ignore[arg-type]
