"""SIGTERM while a client has stopped reading: the server still exits promptly, with 0,
and still writes the state file (issue 9, attack 1)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from pathlib import Path

import aiohttp

from tests.support.net import free_port
from tests.support.servers import ServerProcess, server_env
from tests.support.wsclient import OP_TEXT, frame

UPGRADE = (
    "GET /rtc HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: https://localhost:{port}\r\n"
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)


def stuck_client(port: int, ca: Path) -> ssl.SSLSocket:
    """Upgrades to a WebSocket, identifies as "Stuck", then never reads again (a tiny
    receive buffer, so the server's writes back up at once)."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    tls = ssl.create_default_context(cafile=str(ca)).wrap_socket(raw, server_hostname="localhost")
    tls.sendall(UPGRADE.format(port=port).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += tls.recv(1)
    assert b" 101 " in head.split(b"\r\n", 1)[0], head
    ident = {"type": "identify", "data": {"id": "", "name": "Stuck"}}
    tls.sendall(frame(OP_TEXT, json.dumps(ident).encode()))
    return tls


async def test_sigterm_with_a_client_that_stopped_reading_exits_fast_and_saves_state(tmp_path: Path) -> None:
    port, state = free_port(), tmp_path / "state.json"
    env = server_env(
        PORT=str(port),
        HOST="127.0.0.1",
        CERTS_DIR=str(tmp_path / "certs"),
        STATE_FILE=str(state),
        SEND_QUEUE_BYTES=str(1024**3),  # the stuck socket is kept, not closed for lagging
    )
    server = ServerProcess(env)
    await server.start()
    try:
        await server.wait_for_banner()
        ca = tmp_path / "certs" / "ca.pem"
        stuck = await asyncio.to_thread(stuck_client, port, ca)
        context = ssl.create_default_context(cafile=str(ca))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            ws = await http.ws_connect(f"wss://localhost:{port}/rtc")
            ready = await ws.receive_json(timeout=3)
            await ws.send_json({"type": "identify", "data": {"id": ready["id"], "name": "Sender"}})
            stuck_id = ""
            deadline = time.monotonic() + 5
            while not stuck_id and time.monotonic() < deadline:
                message = await ws.receive_json(timeout=3)
                if message["type"] == "peer" and message["data"].get("name") == "Stuck":
                    stuck_id = message["data"]["id"]
                for peer in message["data"].get("peers", []) if message["type"] == "peers" else []:
                    if peer.get("name") == "Stuck":
                        stuck_id = peer["id"]
            assert stuck_id, "the stuck client never got listed"
            sdp = "v=0\r\n" + "a=x-padding:" + "x" * 50_000 + "\r\n"
            for _ in range(150):  # ~7.5 MB towards a socket that reads nothing
                offer = {"type": "offer", "data": {"type": "offer", "sdp": sdp, "target": stuck_id}}
                await ws.send_json(offer)
            await asyncio.sleep(1.0)
            code, seconds = await server.stop(within=10)
            stuck.close()
        print(f"SIGTERM -> exit {code} in {seconds:.2f} s with a client that stopped reading")
        assert code == 0 and seconds < 3.0
        saved = json.loads(state.read_text())
        assert {p["name"] for p in saved["peers"]} >= {"Stuck", "Sender"}
    finally:
        await server.kill()
