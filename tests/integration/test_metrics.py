"""`/metrics` (issue 14): Prometheus text with connections, listed peers, relays,
errors by code, calls by size; readable from this machine, or with METRICS_TOKEN."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import allowed
from tests.support.liveserver import StartServer
from tests.support.polling import eventually
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


async def test_spaces_are_counted_and_bucketed_never_named(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(echo=True)  # the echo bot is in every space and in none of these figures
    people = [("Ann", "K7M2QX"), ("Bob", "k7m2qx"), ("Cara", "ABCD"), ("Olga", None), ("Oleg", None)]
    for name, space in people:
        client = await RtcClient.connect(http, live.ws_url)
        await client.send({"type": "identify", "data": {"id": client.id, "name": name, "space": space}})
    await eventually(lambda: len(live.hub.listed()) == len(people) + 1, 5, what="everyone listed")
    async with http.get(live.url + "metrics") as resp:
        text = await resp.text()
    got = samples(text)
    assert got[("lan_call_spaces", ())] == 2
    assert got[("lan_call_space_people_bucket", (("le", "1.0"),))] == 1  # ABCD
    assert got[("lan_call_space_people_bucket", (("le", "2.0"),))] == 2  # and K7M2QX
    assert got[("lan_call_space_people_bucket", (("le", "+Inf"),))] == 2
    assert got[("lan_call_space_people_gsum", ())] == 3
    assert got[("lan_call_open_network_peers", ())] == 2
    assert got[("lan_call_open_space_enabled", ())] == 1
    assert "K7M2QX" not in text.upper() and "ABCD" not in text.upper()  # a code lets people in

    closed = await start_server(open_space=False)
    async with http.get(closed.url + "metrics") as resp:
        got = samples(await resp.text())
    assert got[("lan_call_open_space_enabled", ())] == 0
    assert got[("lan_call_spaces", ())] == 0 and got[("lan_call_space_people_bucket", (("le", "+Inf"),))] == 0
