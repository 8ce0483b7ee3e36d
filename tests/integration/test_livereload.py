"""Live reload (docs/protocol.md §5, issue 4): the watcher that pushes a fresh `ready` on every
open socket, batching, RELOAD=off, and the RELOAD=server process restarter. (The version
hash and the watch filter: tests/unit/test_asset_version.py.)"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.assets import compute_version
from server.config import PROJECT_ROOT, ReloadMode
from server.livereload import livereload_ctx
from tests.support.liveserver import LiveServer, StartServer
from tests.support.net import free_port, port_closed
from tests.support.servers import ServerProcess, server_env

TIMEOUT = 5.0  # generous bound for a condition; the watcher normally answers in ~0.1 s


# --- helpers ---------------------------------------------------------------------------


def make_tree(root: Path) -> tuple[Path, Path]:
    public, templates = root / "public", root / "templates"
    (public / "css").mkdir(parents=True)
    templates.mkdir()
    (public / "app.js").write_text("console.log('hi');\n")
    (public / "css" / "app.css").write_text("body { color: black; }\n")
    (templates / "index.html").write_text("<!doctype html><p>{{ version }}</p>\n")
    return public, templates


async def receive_json(ws: aiohttp.ClientWebSocketResponse, within: float = TIMEOUT) -> dict[str, Any]:
    msg = await ws.receive(timeout=within)
    assert msg.type is aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg!r}"
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def first_ready(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    ready = await receive_json(ws)
    assert ready["type"] == "ready"
    return ready


@pytest.fixture
def roots(asset_dirs: tuple[Path, Path]) -> list[Path]:
    """Editable copies of public/ and templates/, with a stylesheet to edit (the real
    client files may still be in the making)."""
    public, templates = asset_dirs
    (public / "probe.css").write_text("body { color: black; }\n")
    return [public, templates]


async def serve_roots(
    start_server: StartServer, roots: list[Path], reload: ReloadMode = ReloadMode.ASSETS
) -> LiveServer:
    """A server on the editable copies, live reload on unless told otherwise."""
    public, templates = roots
    return await start_server(reload=reload, public_dir=public, templates_dir=templates)


# --- the watcher (integration) ---------------------------------------------------------


async def test_edit_pushes_fresh_ready_with_same_id_to_every_socket(
    start_server: StartServer,
    roots: list[Path],
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    public, templates = roots
    live = await serve_roots(start_server, roots)
    async with http.ws_connect(live.ws_url) as ws1, http.ws_connect(live.ws_url) as ws2:
        ready1, ready2 = await first_ready(ws1), await first_ready(ws2)
        original = ready1["version"]
        assert original == ready2["version"] == compute_version(roots)

        caplog.set_level(logging.INFO, logger="server.livereload")
        (public / "probe.css").write_text("body { color: red; }\n")
        fresh1, fresh2 = await first_ready(ws1), await first_ready(ws2)
        assert fresh1["id"] == ready1["id"] and fresh2["id"] == ready2["id"]
        assert fresh1["version"] == fresh2["version"] == compute_version(roots) != original
        assert live.hub.version == fresh1["version"]
        assert fresh1["config"] == ready1["config"]
        lines = [r.getMessage() for r in caplog.records if "event=assets-changed" in r.getMessage()]
        assert len(lines) == 1
        assert lines[0].startswith(
            f"event=assets-changed version={fresh1['version']} previous={original} files=1 sockets=2 ms="
        )

        # Templates are watched too, and a new page gets the new version.
        (templates / "index.html").write_text("<!doctype html><p>edited {{ version }}</p>\n")
        again = await first_ready(ws1)
        assert again["id"] == ready1["id"] and again["version"] not in (original, fresh1["version"])
        assert again["version"] == compute_version(roots)
        await first_ready(ws2)
        async with http.get(live.url) as resp:
            assert f"edited {again['version']}" in await resp.text()


async def test_ten_files_saved_at_once_give_one_ready(
    start_server: StartServer, roots: list[Path], http: aiohttp.ClientSession
) -> None:
    public = roots[0]
    live = await serve_roots(start_server, roots)
    async with http.ws_connect(live.ws_url) as ws:
        ready = await first_ready(ws)
        for i in range(10):  # "save all" in an editor: ten saves spread over ~30 ms
            (public / f"batch{i}.css").write_text(f".b{i} {{ color: red; }}\n")
            await asyncio.sleep(0.003)
        final = compute_version(roots)

        batch = await first_ready(ws)
        assert batch["version"] == final, "the first reload must already carry every file"
        assert batch["id"] == ready["id"]

        # Sync point instead of a sleep: the next thing this socket sees must be the
        # ready for the marker, i.e. the batch produced no second ready.
        (public / "marker.css").write_text(".marker {}\n")
        after = await first_ready(ws)
        assert after["version"] == compute_version(roots) != final


async def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, within: float = TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not any(text in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, f"no log line with {text!r}"
        await asyncio.sleep(0.01)


async def test_temp_files_are_filtered_out_of_the_batch(
    start_server: StartServer,
    roots: list[Path],
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    public = roots[0]
    live = await serve_roots(start_server, roots)
    caplog.set_level(logging.DEBUG, logger="server.livereload")
    async with http.ws_connect(live.ws_url) as ws:
        ready = await first_ready(ws)
        # A vim-style save: swap file, write probe, backup, then the real write.
        for name in (".probe.css.swp", "4913", "probe.css~", ".#probe.css", ".git/index"):
            (public / name).parent.mkdir(exist_ok=True)
            (public / name).write_text("scratch")
        (public / "probe.css").write_text("body { color: green; }\n")
        fresh = await first_ready(ws)
        assert fresh["version"] == compute_version(roots) != ready["version"]
        changed = [r.getMessage() for r in caplog.records if "event=assets-changed" in r.getMessage()]
        assert len(changed) == 1 and " files=1 " in changed[0], changed  # only probe.css counted


async def test_rewrite_with_same_content_pushes_nothing(
    start_server: StartServer,
    roots: list[Path],
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    public = roots[0]
    live = await serve_roots(start_server, roots)
    caplog.set_level(logging.DEBUG, logger="server.livereload")
    async with http.ws_connect(live.ws_url) as ws:
        ready = await first_ready(ws)
        probe = public / "probe.css"
        probe.write_text(probe.read_text())  # saved without changes: mtime moves, content not
        await wait_for_log(caplog, f"event=assets-unchanged version={ready['version']}")
        (public / "marker.css").write_text(".marker {}\n")
        after = await first_ready(ws)  # the first push is the marker's: no reload for the no-op
        assert after["version"] == compute_version(roots) != ready["version"]


async def test_reload_off_starts_no_watcher(
    start_server: StartServer, roots: list[Path], http: aiohttp.ClientSession
) -> None:
    public = roots[0]
    off = await serve_roots(start_server, roots, ReloadMode.OFF)
    assert off.app is not None and livereload_ctx not in off.app.cleanup_ctx
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "livereload"]

    # A watching server on the same files is the yardstick for "would have noticed".
    on = await serve_roots(start_server, roots)
    assert [t for t in asyncio.all_tasks() if t.get_name() == "livereload"]
    async with http.ws_connect(off.ws_url) as ws_off, http.ws_connect(on.ws_url) as ws_on:
        ready_off, _ = await first_ready(ws_off), await first_ready(ws_on)
        (public / "probe.css").write_text("body { color: blue; }\n")
        assert (await first_ready(ws_on))["version"] == compute_version(roots)
        # A round trip on the unwatched socket: nothing was queued before the reply.
        await ws_off.send_str("not json")
        reply = await receive_json(ws_off)
        assert reply["type"] == "error" and reply["data"]["code"] == "bad-json"
        assert off.hub.version == ready_off["version"] != on.hub.version


async def test_missing_root_is_skipped_and_the_other_still_watched(
    start_server: StartServer, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    _, templates = make_tree(tmp_path)
    missing = tmp_path / "no-public"
    live = await start_server(reload=ReloadMode.ASSETS, public_dir=missing, templates_dir=templates)
    async with http.ws_connect(live.ws_url) as ws:
        ready = await first_ready(ws)
        (templates / "index.html").write_text("<p>edited</p>\n")
        fresh = await first_ready(ws)
        assert fresh["version"] == compute_version([missing, templates]) != ready["version"]


async def test_shutdown_stops_the_watcher_promptly_and_quietly(
    start_server: StartServer, roots: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    public = roots[0]
    live = await serve_roots(start_server, roots)
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "livereload"]
    caplog.set_level(logging.DEBUG)
    began = time.monotonic()
    await live.stop()
    assert task.done() and not task.cancelled() and task.exception() is None
    assert time.monotonic() - began < 1.0
    version = live.hub.version
    (public / "probe.css").write_text("body { color: red; }\n")  # nobody is listening
    assert live.hub.version == version
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not noisy, [r.getMessage() for r in noisy]


# --- RELOAD=server (integration, real processes) --------------------------------------


class DevServer(ServerProcess):
    """`RELOAD=server python -m server` on a private copy of the project, so a test
    may edit server/*.py without touching the real tree."""

    def __init__(self, root: Path, certs: Path, ca: Path) -> None:
        self.root = root
        self.port = free_port()
        self.context = ssl.create_default_context(cafile=str(ca))
        env = server_env(
            HOST="127.0.0.1",
            PORT=str(self.port),
            CERTS_DIR=str(certs),
            STATE_FILE=str(root / "state.json"),
            RELOAD="server",
            PYTHONDONTWRITEBYTECODE="1",
        )
        super().__init__(env, cwd=root, new_session=True)

    @property
    def ws_url(self) -> str:
        return f"wss://localhost:{self.port}/rtc"


@pytest.fixture
async def dev_server(tmp_path: Path, cert_files: Any) -> Any:
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "server", root / "server", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "public", root / "public")
    shutil.copytree(PROJECT_ROOT / "templates", root / "templates")
    (root / "public" / "probe.css").write_text("body { color: black; }\n")
    server = DevServer(root, cert_files.cert.parent, cert_files.ca)
    yield server
    await server.kill()


async def test_server_restarts_on_code_change_and_clients_resume(dev_server: DevServer) -> None:
    await dev_server.start()
    await dev_server.wait_for_banner(1)
    connector = aiohttp.TCPConnector(ssl=dev_server.context)
    async with aiohttp.ClientSession(connector=connector) as http:
        ws = await http.ws_connect(dev_server.ws_url)
        ready = await first_ready(ws)
        await ws.send_json({"type": "identify", "data": {"id": ready["id"], "name": "Ada"}})

        # An edit under server/ restarts the process; the socket is closed "going away".
        views = dev_server.root / "server" / "views.py"
        views.write_text(views.read_text() + "\n# edited by test_livereload\n")
        closing = await ws.receive(timeout=TIMEOUT)
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1001
        await dev_server.wait_for_banner(2)
        assert "event=server-restart files=1 changed=views.py" in dev_server.output

        # The client resumes with its token: same id (state kept across the restart),
        # same assets, so it would not reload.
        ws = await http.ws_connect(f"{dev_server.ws_url}?resume={ready['token']}")
        resumed = await first_ready(ws)
        assert resumed["id"] == ready["id"]
        assert resumed["version"] == ready["version"]

        # The restarted child still live-reloads assets without a restart.
        (dev_server.root / "public" / "probe.css").write_text("body { color: red; }\n")
        fresh = await first_ready(ws)
        assert fresh["id"] == ready["id"] and fresh["version"] != ready["version"]
        assert fresh["version"] == compute_version(
            [dev_server.root / "public", dev_server.root / "templates"]
        )

        await ws.close()

    assert dev_server.proc is not None
    dev_server.proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(dev_server.proc.wait(), 10)
    output = await dev_server.read_rest()
    assert code == 0, output
    assert "Traceback" not in output and " WARNING " not in output and " ERROR " not in output
    assert output.count("Press Ctrl+C to stop.") == 2
    assert port_closed(dev_server.port)  # the child went with it


async def test_ctrl_c_stops_restarter_and_child_with_code_0(dev_server: DevServer) -> None:
    await dev_server.start()
    await dev_server.wait_for_banner(1)
    connector = aiohttp.TCPConnector(ssl=dev_server.context)
    async with aiohttp.ClientSession(connector=connector) as http:
        ws = await http.ws_connect(dev_server.ws_url)
        await first_ready(ws)
        assert dev_server.proc is not None
        os.killpg(dev_server.proc.pid, signal.SIGINT)  # what a terminal's Ctrl+C does
        closing = await ws.receive(timeout=TIMEOUT)
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1001
    code = await asyncio.wait_for(dev_server.proc.wait(), 10)
    output = await dev_server.read_rest()
    assert code == 0, output
    assert "Traceback" not in output and " WARNING " not in output and " ERROR " not in output
    assert port_closed(dev_server.port)


async def test_busy_port_ends_the_restarter_with_code_2(dev_server: DevServer) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        dev_server.env["PORT"] = str(port)
        await dev_server.start()
        assert dev_server.proc is not None
        code = await asyncio.wait_for(dev_server.proc.wait(), 20)
    output = await dev_server.read_rest()
    assert code == 2, output
    assert f"error: PORT={port} on HOST=127.0.0.1 cannot be used" in output
    assert "Traceback" not in output and "Press Ctrl+C to stop." not in output
