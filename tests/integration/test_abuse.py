"""/rtc over real TLS sockets under the attack findings of issue 9: a client that stops
reading, a ping flood, frames at the size limit, leaving on purpose, sockets that never
identify, many sockets from one address, relays to a peer whose socket is gone."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import ssl
import struct
from typing import Any

import aiohttp

from tests.support.liveserver import StartServer
from tests.support.polling import eventually
from tests.support.rtcclient import RtcClient


class NeverReads:
    """A TLS WebSocket client that upgrades, identifies, then never reads again (a tiny
    receive buffer, so the server's writes back up at once): the slow reader."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.id = ""

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext, name: str) -> NeverReads:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, ssl=context, server_hostname="localhost")
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /rtc HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n", 1)[0], head
        client = cls(reader, writer)
        frame = await client.read_frame()  # ready
        client.id = json.loads(frame)["id"]
        client.send({"type": "identify", "data": {"name": name}})
        return client

    async def read_frame(self) -> bytes:
        _first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return await self.reader.readexactly(length)

    def send(self, message: Any) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

    def gone(self) -> bool:
        return self.reader.at_eof()


async def test_a_client_that_stops_reading_stalls_nobody_and_is_closed(
    start_server: StartServer, http: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server(
        rate_limit=1e6, rate_burst=10**6, address_rate_limit=0, send_queue_bytes=64 * 1024, resume_grace=0.5
    )
    watcher = await RtcClient.connect(http, live.ws_url, "Watcher")
    senders = [await RtcClient.connect(http, live.ws_url, f"Sender {i}") for i in range(3)]
    slow = await NeverReads.connect(live.port, client_ssl, "Slow")
    leaver = await RtcClient.connect(http, live.ws_url, "Leaver")
    await asyncio.sleep(0.3)
    for client in (watcher, *senders):
        while True:  # drain the joins
            try:
                await client.recv(0.2)
            except TimeoutError:
                break
    # Every sender floods the slow reader with big offers, then relays to the watcher:
    # 7.2 MB in all, beyond what the kernel's send buffer (tcp_wmem, up to 4 MiB) and
    # the TLS transport absorb before the server's own queue fills.
    big = {"type": "offer", "data": {"type": "offer", "sdp": "x" * 30_000, "target": slow.id}}
    for sender in senders:
        for _ in range(80):
            await sender.send(big)
        await sender.send({"type": "hangup", "data": {"target": watcher.id, "reason": "after-flood"}})
    got = [await watcher.expect("hangup", timeout=5) for _ in senders]
    assert {m["data"]["reason"] for m in got} == {"after-flood"}
    # The slow reader was closed for it, and its removal reached everyone.
    removal = await watcher.expect("peer", timeout=5)
    assert removal["data"] == {"id": slow.id, "name": "Slow", "kind": "browser", "remove": True}
    # A peer whose socket drops is still announced on time: the expiry task never waits
    # on one socket (it once froze for 61 s behind a never-reading client).
    await leaver.ws.close()
    removal = await watcher.expect("peer", timeout=3)
    assert removal["data"]["id"] == leaver.id and removal["data"]["remove"] is True
    assert live.hub.peer(slow.id) is None
    slow.writer.close()


async def test_a_ping_flood_is_closed_with_1008(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(rate_limit=50, rate_burst=200, address_rate_limit=0)
    flooder = await RtcClient.connect(http, live.ws_url, "Flooder", autoping=False)
    closed = asyncio.create_task(flooder.closed(timeout=15))
    for _ in range(10_000):  # about 1,000 pings/s for at most ~10 s
        if closed.done():
            break
        try:
            await flooder.ws.ping(b"x")
        except (ConnectionError, RuntimeError):
            break
        await asyncio.sleep(0.001)
    assert await closed == 1008


async def test_a_flooder_that_never_reads_is_cut_off_once_closed(
    start_server: StartServer, client_ssl: ssl.SSLContext, caplog: Any
) -> None:
    """Issue 18 finding 33: the 1008 close used to wait behind a write stuck on the
    flooder's full buffer until the stall timeout (the heartbeat, here 60 s) ended it as a
    slow reader, reading its flood all the while. Now reading stops at the close and the
    close itself ends the connection; the rate-close is logged once."""
    live = await start_server(rate_limit=50, rate_burst=200, address_rate_limit=0, heartbeat=60.0)
    caplog.set_level("INFO")
    flooder = await NeverReads.connect(live.port, client_ssl, "Flooder")
    await eventually(lambda: len(live.hub.listed()) == 1, 5, what="the flooder listed")
    pings = (bytes([0x89, 0x84]) + os.urandom(4) + b"ping") * 20  # masked 4-byte pings
    loop = asyncio.get_running_loop()
    until = loop.time() + 30  # far over the limit for 5 s closes it; the flood stops then
    while live.hub.connections and loop.time() < until and not flooder.writer.is_closing():
        flooder.writer.write(pings)  # about 2,000 pings/s, whatever the server does
        await asyncio.sleep(0.01)
    await eventually(lambda: live.hub.connections == 0, 5, what="the flooder's connection closed")
    lines = [r.getMessage() for r in caplog.records]
    assert sum("event=rate-close" in line for line in lines) == 1
    assert not any("event=slow-reader" in line for line in lines), "ended by the stall timeout"
    flooder.writer.transport.abort()


async def test_a_frame_of_exactly_max_message_bytes_is_accepted(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(max_message_bytes=4096)
    a = await RtcClient.connect(http, live.ws_url, "Alice")
    b = await RtcClient.connect(http, live.ws_url, "Bob")
    await a.expect("peer")
    await b.expect("peer")
    template = {"type": "hangup", "data": {"target": b.id, "reason": "x", "pad": ""}}
    pad = 4096 - len(json.dumps(template))
    template["data"]["pad"] = "p" * pad
    text = json.dumps(template)
    assert len(text.encode()) == 4096
    await a.send(text)
    assert (await b.expect("hangup"))["data"]["reason"] == "x"
    template["data"]["pad"] += "p"
    await a.send(json.dumps(template))
    assert await a.closed() == 1009


async def test_leave_is_seen_by_everyone_at_once(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(resume_grace=30)
    watcher = await RtcClient.connect(http, live.ws_url, "Watcher")
    bob = await RtcClient.connect(http, live.ws_url, "Bob")
    await watcher.expect("peer")
    await bob.send({"type": "leave", "data": {}})
    removal = await watcher.expect("peer", timeout=1.0)  # not after the 30 s grace
    assert removal["data"]["id"] == bob.id and removal["data"]["remove"] is True
    assert await bob.closed() == 1000
    # A reload right after (a page cannot tell it from closing) gets the same id back.
    again = await RtcClient.connect(http, f"{live.ws_url}?resume={bob.token}", "Bob")
    assert again.id == bob.id
    assert (await watcher.expect("peer"))["data"] == {"id": bob.id, "name": "Bob", "kind": "browser"}


async def test_a_socket_that_never_identifies_is_closed(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(identify_timeout=0.5)
    lurker = await RtcClient.connect(http, live.ws_url)
    assert await lurker.closed(timeout=3) == 1008
    assert live.hub.connections == 0


async def test_renames_from_one_address_fan_out_at_most_the_burst(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(rename_rate=1)
    watcher = await RtcClient.connect(http, live.ws_url, "Watcher")
    renamers = [await RtcClient.connect(http, live.ws_url, f"R{i}") for i in range(5)]
    for _ in renamers:
        await watcher.expect("peer")
    for round_ in range(4):
        for i, renamer in enumerate(renamers):
            await renamer.send({"type": "identify", "data": {"name": f"R{i} take {round_}"}})
    announced = 0
    while True:
        try:
            message = await watcher.recv(0.5)
        except TimeoutError:
            break
        announced += message["type"] == "peer"
    assert announced <= 6, announced  # the burst of 5 (plus one refill), not 20


async def test_an_offer_to_a_dropped_peer_is_answered_with_peer_away(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(resume_grace=30)
    alice = await RtcClient.connect(http, live.ws_url, "Alice")
    bob = await RtcClient.connect(http, live.ws_url, "Bob")
    await alice.expect("peer")
    await bob.ws.close()  # a network drop: no leave
    await asyncio.sleep(0.2)
    await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": bob.id}})
    notice = await alice.expect("error", timeout=2)
    assert notice["data"]["code"] == "peer-away" and notice["data"]["target"] == bob.id
    back = await RtcClient.connect(http, f"{live.ws_url}?resume={bob.token}")
    assert back.id == bob.id
    assert (await back.expect("offer"))["data"]["sdp"] == "v=0"


async def test_a_client_that_pings_without_reading_then_drops_logs_no_traceback(
    start_server: StartServer, client_ssl: ssl.SSLContext, caplog: Any
) -> None:
    """It once made ConnectionError escape the handler: two tracebacks per connection."""
    live = await start_server(rate_limit=1e6, rate_burst=10**6, address_rate_limit=0)
    caplog.set_level("INFO")
    for _ in range(3):
        slow = await NeverReads.connect(live.port, client_ssl, "Pinger")
        ping = bytes([0x89, 0x80]) + os.urandom(4)  # a masked, empty ping frame
        slow.writer.write(ping * 20_000)  # the server is still answering these...
        await asyncio.sleep(0.05)
        sock = slow.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        slow.writer.transport.abort()  # ...when the connection is reset under it
    await asyncio.sleep(0.5)
    assert live.hub.connections == 0
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    assert any("event=disconnect" in r.getMessage() for r in caplog.records)


async def test_idle_sockets_from_one_address_cannot_keep_a_newcomer_out(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    """Issue 18 finding 33: at MAX_CLIENTS the newest socket of the address holding the most
    is closed (1013, try again later) to let a device from another address in."""
    live = await start_server(max_clients=6, join_rate=0)
    squat_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=client_ssl, local_addr=("127.0.0.2", 0))
    )
    honest_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=client_ssl, local_addr=("127.0.0.3", 0))
    )
    async with squat_session, honest_session:
        squatters = [await RtcClient.connect(squat_session, live.ws_url, f"Squat {i}") for i in range(6)]
        await eventually(lambda: live.hub.connections == 6, 5, what="six squatters connected")
        honest = await RtcClient.connect(honest_session, live.ws_url, "Honest")
        assert honest.id and await squatters[-1].closed() == 1013
        assert live.hub.peer(honest.id) is not None
