"""/rtc end to end over real TLS WebSockets: every message type with three clients,
stamping, errors, limits, liveness, origin, capacity, shutdown, and a client written
for the original protocol."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.support.liveserver import StartServer
from tests.support.rtcclient import RtcClient

CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 192.0.2.2 54321 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


async def trio(http: aiohttp.ClientSession, url: str) -> tuple[RtcClient, RtcClient, RtcClient]:
    a = await RtcClient.connect(http, url, "Alice")
    b = await RtcClient.connect(http, url, "Bob")
    assert (await a.expect("peer"))["data"]["name"] == "Bob"
    assert (await b.expect("peer"))["data"]["name"] == "Alice"
    c = await RtcClient.connect(http, url, "Carol")
    assert {(await c.expect("peer"))["data"]["name"] for _ in range(2)} == {"Alice", "Bob"}
    for other in (a, b):
        assert (await other.expect("peer"))["data"] == {"id": c.id, "name": "Carol", "kind": "browser"}
    return a, b, c


async def test_every_message_type_end_to_end(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server(resume_grace=0)
    a, b, c = await trio(http, live.ws_url)
    flows = [
        (a, b, {"type": "offer", "data": {"type": "offer", "sdp": "v=0 offer", "target": b.id}}),
        (b, a, {"type": "accept", "data": {"type": "answer", "sdp": "v=0 answer", "target": a.id}}),
        (a, b, {"type": "icecandidate", "data": {"id": a.id, "target": b.id, "candidate": CANDIDATE}}),
        (b, a, {"type": "icecandidate", "data": {"id": b.id, "target": a.id, "candidate": None}}),
        (c, a, {"type": "offer", "data": {"type": "offer", "sdp": "v=0 second", "target": a.id}}),
        (a, c, {"type": "reject", "data": {"target": c.id, "reason": "busy"}}),
        (a, b, {"type": "hangup", "data": {"target": b.id, "reason": "ended"}}),
    ]
    for sender, receiver, message in flows:
        await sender.send(message)
        got = await receiver.expect(message["type"])
        expected = {**message["data"], "source": sender.id}
        if message["type"] == "icecandidate":
            expected["id"] = sender.id
        assert got["data"] == expected
    for client in (a, b, c):
        await client.silent()
    # Rename, then leave.
    await b.send({"type": "identify", "data": {"id": b.id, "name": "Robert"}})
    for other in (a, c):
        assert (await other.expect("peer"))["data"]["name"] == "Robert"
    await c.ws.close()
    for other in (a, b):
        removal = await other.expect("peer", timeout=3)
        assert removal["data"] == {"id": c.id, "name": "Carol", "kind": "browser", "remove": True}


async def test_spoofed_sender_fields_are_overwritten(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    a, b, c = await trio(http, live.ws_url)
    await c.send({"type": "offer", "data": {"type": "offer", "sdp": "x", "source": a.id, "target": b.id}})
    assert (await b.expect("offer"))["data"]["source"] == c.id
    await c.send(
        {"type": "icecandidate", "data": {"id": a.id, "source": a.id, "target": b.id, "candidate": CANDIDATE}}
    )
    got = (await b.expect("icecandidate"))["data"]
    assert got["id"] == c.id and got["source"] == c.id
    await c.send({"type": "identify", "data": {"id": a.id, "name": "Mallory"}})
    for other in (a, b):
        assert (await other.expect("peer"))["data"]["id"] == c.id  # claiming another id renames only itself
    assert "token" not in json.dumps([p.name for p in live.hub.listed()])


async def test_unknown_peer_answers_at_once(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server()
    a = await RtcClient.connect(http, live.ws_url, "Alice")
    await a.send({"type": "offer", "data": {"type": "offer", "sdp": "x", "target": "00000000-gone"}})
    err = await a.expect("error")
    assert err["data"]["code"] == "unknown-peer" and err["data"]["ref"] == "offer"
    await a.send("{oops")
    assert (await a.expect("error"))["data"]["code"] == "bad-json"


async def test_oversize_frame_closes_1009(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server(max_message_bytes=4096)
    a, b, _ = await trio(http, live.ws_url)
    await a.send({"type": "offer", "data": {"type": "offer", "sdp": "x" * 5000, "target": b.id}})
    assert await a.closed() == 1009
    await b.silent()  # nothing of it was relayed; Bob's socket is fine
    await b.send({"type": "identify", "data": {"name": "Bob"}})


async def test_binary_frame_gets_error(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server()
    a = await RtcClient.connect(http, live.ws_url, "Alice")
    await a.ws.send_bytes(b"\x00\x01binary")
    err = await a.expect("error")
    assert err["data"]["code"] == "bad-message" and "binary" in err["data"]["message"]


async def test_invalid_utf8_closes_that_socket_only(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    a, b, _ = await trio(http, live.ws_url)
    await a.ws.send_frame(b'{"type":"identify","data":{"name":"\xff\xfe"}}', aiohttp.WSMsgType.TEXT)
    assert await a.closed() == 1007  # RFC 6455 §8.1: invalid UTF-8 fails the connection
    await b.send({"type": "offer", "data": {"type": "offer", "sdp": "x", "target": "nobody"}})
    assert (await b.expect("error"))["data"]["code"] == "unknown-peer"


async def test_foreign_origin_is_refused_403(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server(allowed_origins=frozenset({"https://allowed.example"}))
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(live.ws_url, origin="https://evil.example")
    assert caught.value.status == 403
    for origin in (f"https://localhost:{live.port}", "https://allowed.example"):
        ok = await http.ws_connect(live.ws_url, origin=origin)
        assert (await ok.receive_json())["type"] == "ready"
        await ok.close()
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await http.ws_connect(live.ws_url, origin=f"https://localhost:{live.port + 1}")


async def test_capacity_refuses_503(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server(max_clients=2)
    a = await RtcClient.connect(http, live.ws_url)
    b = await RtcClient.connect(http, live.ws_url)
    assert live.hub.connections == 2
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(live.ws_url)
    assert caught.value.status == 503
    await a.ws.close()
    for _ in range(50):
        if live.hub.connections < 2:
            break
        await asyncio.sleep(0.02)
    again = await RtcClient.connect(http, live.ws_url)  # a freed slot is usable again
    assert again.id not in (a.id, b.id)


async def test_silent_client_is_dropped_and_announced(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(heartbeat=0.3, resume_grace=0.2)
    watcher = await RtcClient.connect(http, live.ws_url, "Watcher")
    # autoping=False: this client never answers pings, like a phone that lost Wi-Fi.
    silent = await RtcClient.connect(http, live.ws_url, "Ghost", autoping=False)
    assert (await watcher.expect("peer"))["data"]["name"] == "Ghost"
    removal = await watcher.expect("peer", timeout=5)
    assert removal["data"]["id"] == silent.id and removal["data"]["remove"] is True


async def test_shutdown_closes_every_socket_with_1001(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    clients = [await RtcClient.connect(http, live.ws_url, f"P{i}") for i in range(3)]
    stopping = asyncio.create_task(live.stop())
    codes = await asyncio.gather(*(c.closed() for c in clients))
    await stopping
    assert codes == [1001, 1001, 1001]


async def test_resume_keeps_id_and_peers_see_nothing(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(resume_grace=5)
    a = await RtcClient.connect(http, live.ws_url, "Alice")
    b = await RtcClient.connect(http, live.ws_url, "Bob")
    await a.expect("peer")
    await b.expect("peer")
    await a.ws.close()
    await asyncio.sleep(0.1)
    # A relay sent while Alice is away is held for her.
    await b.send({"type": "icecandidate", "data": {"target": a.id, "candidate": None}})
    back = await RtcClient.connect(http, f"{live.ws_url}?resume={a.token}", "Alice")
    assert back.id == a.id and back.token != a.token
    assert (await back.expect("icecandidate"))["data"]["id"] == b.id
    assert (await back.expect("peer"))["data"]["name"] == "Bob"
    await b.silent(0.3)


async def test_server_restart_keeps_ids(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server(resume_grace=10)
    a = await RtcClient.connect(http, live.ws_url, "Alice")
    b = await RtcClient.connect(http, live.ws_url, "Bob")
    await a.expect("peer")
    await live.restart()
    a2 = await RtcClient.connect(http, f"{live.ws_url}?resume={a.token}", "Alice")
    assert a2.id == a.id
    assert (await a2.expect("peer"))["data"]["id"] == b.id  # Bob still listed, in his grace
    b2 = await RtcClient.connect(http, f"{live.ws_url}?resume={b.token}", "Bob")
    assert b2.id == b.id
    assert (await b2.expect("peer"))["data"]["id"] == a.id
    await a2.silent(0.3)  # no leave/join flicker for Alice


async def test_original_protocol_client_works_unmodified(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    """What the SitePen demo client does on the wire: subprotocols ["userid", id], identify
    with its id, offer/accept/icecandidate/reject with source/target fields."""
    live = await start_server()
    old = await http.ws_connect(live.ws_url, protocols=("userid", "previous-id"))
    assert old.protocol == "userid"  # Chromium fails the handshake without it
    ready = await old.receive_json()
    assert set(ready) >= {"type", "version", "id"}
    old_id = ready["id"]
    await old.send_json({"type": "identify", "data": {"id": old_id, "name": "Anonymous"}})
    new = await RtcClient.connect(http, live.ws_url, "New")
    assert (await old.receive_json()) == {
        "type": "peer",
        "data": {"id": new.id, "name": "New", "kind": "browser"},
    }
    await new.expect("peer")
    await old.send_json(
        {"type": "offer", "data": {"type": "offer", "sdp": "v=0", "source": old_id, "target": new.id}}
    )
    assert (await new.expect("offer"))["data"]["source"] == old_id
    await new.send(
        {"type": "accept", "data": {"type": "answer", "sdp": "v=0", "source": new.id, "target": old_id}}
    )
    accept = await old.receive_json()
    assert (
        accept["type"] == "accept"
        and accept["data"]["type"] == "answer"
        and accept["data"]["source"] == new.id
    )
    await old.send_json(
        {"type": "icecandidate", "data": {"id": old_id, "target": new.id, "candidate": CANDIDATE}}
    )
    assert (await new.expect("icecandidate"))["data"]["id"] == old_id
    await new.send({"type": "icecandidate", "data": {"id": new.id, "target": old_id, "candidate": CANDIDATE}})
    ice = await old.receive_json()
    assert ice["data"]["id"] == new.id and ice["data"]["candidate"] == CANDIDATE
    await old.send_json({"type": "reject", "data": {"source": old_id, "target": new.id}})
    assert (await new.expect("reject"))["data"] == {"source": old_id, "target": new.id}
    await new.silent()  # the old client ignores our extensions; nothing else was sent to it
    await old.close()
