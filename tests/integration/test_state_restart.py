"""Peers survive a crash: the state file is written soon after a change, so after
`kill -9` and a restart every tab resumes its id (issue 9, attack 10)."""

from __future__ import annotations

import json
import signal
import ssl
from pathlib import Path

import aiohttp

from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.servers import ServerProcess, server_env


async def identified(
    http: aiohttp.ClientSession, url: str, name: str
) -> tuple[aiohttp.ClientWebSocketResponse, str, str]:
    """Connect and identify; returns the open socket, its id and its resume token."""
    ws = await http.ws_connect(url)
    ready = await ws.receive_json(timeout=3)
    await ws.send_json({"type": "identify", "data": {"id": ready["id"], "name": name}})
    return ws, ready["id"], ready["token"]


async def test_kill_9_then_restart_resumes_every_peer(tmp_path: Path) -> None:
    port, state = free_port(), tmp_path / "state.json"
    env = server_env(
        PORT=str(port), HOST="127.0.0.1", CERTS_DIR=str(tmp_path / "certs"), STATE_FILE=str(state)
    )
    server = ServerProcess(env)
    await server.start()
    try:
        await server.wait_for_banner()
        context = ssl.create_default_context(cafile=str(tmp_path / "certs" / "ca.pem"))
        url = f"wss://localhost:{port}/rtc"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            peers = {name: await identified(http, url, name) for name in ("Ann", "Ben", "Cat")}

            def saved_names() -> set[str]:
                try:
                    return {p["name"] for p in json.loads(state.read_text())["peers"]}
                except (OSError, ValueError):
                    return set()

            await eventually(lambda: saved_names() == set(peers), 5, what="state saved")
            assert server.proc is not None
            server.proc.send_signal(signal.SIGKILL)
            await server.proc.wait()

            server = ServerProcess(env)
            await server.start()
            await server.wait_for_banner()
            for name, (_, peer_id, token) in peers.items():
                async with http.ws_connect(f"{url}?resume={token}") as ws:
                    ready = await ws.receive_json(timeout=3)
                    assert ready["id"] == peer_id, f"{name} did not get its id back"
    finally:
        await server.kill()
