"""The listening socket of `python -m server`: plain http:// on the TLS port, slowloris
(silent connections), the per-address cap, idle timeouts, and the file-descriptor
limit. Loopback only; attackers use other 127.x source addresses than the honest client."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from server.config import PROJECT_ROOT
from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.servers import BANNER_END, SERVER_ARGV, server_env


class Server:
    def __init__(self, proc: asyncio.subprocess.Process, port: int, ca: Path) -> None:
        self.proc, self.port, self.ca = proc, port, ca
        self.output = ""

    async def read_output(self, within: float = 3) -> str:
        """What the server printed so far (a server flooding its log is cut off)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), 0.2)
            except TimeoutError:
                return self.output
            if not line:
                return self.output
            self.output += line.decode()
        return self.output

    async def healthz(self, within: float) -> float:
        """Seconds an honest client (from 127.0.0.1) needs to get /healthz."""
        began = time.monotonic()
        context = ssl.create_default_context(cafile=str(self.ca))
        connector = aiohttp.TCPConnector(ssl=context, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            resp = await asyncio.wait_for(http.get(f"https://localhost:{self.port}/healthz"), within)
            assert resp.status == 200
            resp.release()
        return time.monotonic() - began


async def start_server(tmp_path: Path, files: int | None = None, **settings: str) -> Server:
    port = free_port()
    env = server_env(
        PORT=str(port),
        HOST="127.0.0.1",
        CERTS_DIR=str(tmp_path / "certs"),
        STATE_FILE=str(tmp_path / "state.json"),
        **settings,
    )

    def limit_files() -> None:
        if files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    proc = await asyncio.create_subprocess_exec(
        *SERVER_ARGV,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=limit_files,
    )
    server = Server(proc, port, tmp_path / "certs" / "ca.pem")
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while BANNER_END not in server.output:
        line = await asyncio.wait_for(proc.stdout.readline(), max(0.1, deadline - time.monotonic()))
        if not line:
            raise AssertionError(f"server exited early:\n{server.output}")
        server.output += line.decode()
    return server


@pytest.fixture
async def servers() -> AsyncIterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.returncode is None:
            server.proc.kill()
            await server.proc.wait()


def silent_connections(port: int, count: int, source: str) -> list[socket.socket]:
    """`count` TCP connections from `source` that never send a byte."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(("127.0.0.1", port))
        socks.append(sock)
    return socks


def still_open(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


async def test_plain_http_on_the_tls_port_is_redirected_to_https(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = await start_server(tmp_path)
    servers.append(server)
    for host, expected in [
        (f"localhost:{server.port}", f"https://localhost:{server.port}/trust?x=1"),
        (f"127.0.0.1:{server.port}", f"https://127.0.0.1:{server.port}/trust?x=1"),
        ("evil.example", f"https://localhost:{server.port}/trust?x=1"),  # no open redirect
    ]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"GET /trust?x=1 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        response = (await asyncio.wait_for(reader.read(), 3)).decode()
        writer.close()
        assert response.startswith("HTTP/1.1 308 "), response
        assert f"\r\nLocation: {expected}\r\n" in response
        assert "https://" in response.split("\r\n\r\n", 1)[1]  # the body says where to go
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
        http.get(f"http://localhost:{server.port}/", allow_redirects=False) as resp,
    ):
        assert resp.status == 308 and resp.headers["Location"] == f"https://localhost:{server.port}/"
    assert await server.healthz(3) < 3  # TLS on the same port still works


async def test_slowloris_is_capped_per_address_and_timed_out(tmp_path: Path, servers: list[Server]) -> None:
    server = await start_server(tmp_path, HANDSHAKE_TIMEOUT="1.5", MAX_CONNECTIONS_PER_ADDRESS="64")
    servers.append(server)
    attack = silent_connections(server.port, 200, "127.0.0.2")
    await asyncio.sleep(0.5)
    held = sum(still_open(s) for s in attack)
    seconds = await server.healthz(3)
    began = time.monotonic()
    await eventually(lambda: not any(still_open(s) for s in attack), 5, what="silent connections closed")
    lifetime = 0.5 + time.monotonic() - began
    for sock in attack:
        sock.close()
    print(
        f"silent connections held: {held} of 200; honest client served in {seconds:.2f} s; "
        f"a silent connection lived {lifetime:.1f} s (HANDSHAKE_TIMEOUT=1.5)"
    )
    assert held <= 64
    assert lifetime < 3.0
    output = await server.read_output()
    assert output.count("reason=connections-per-address") == 1, "one rate-limited line"


async def test_connection_that_sends_no_request_after_the_handshake_is_closed(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = await start_server(tmp_path, IDLE_TIMEOUT="1")
    servers.append(server)
    context = ssl.create_default_context(cafile=str(server.ca))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=context, server_hostname="localhost"
    )
    began = time.monotonic()
    writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n")  # headers never finished
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert time.monotonic() - began < 2.5
    writer.close()


async def test_slowloris_at_the_file_limit_does_not_lock_out_or_flood_the_log(
    tmp_path: Path, servers: list[Server]
) -> None:
    # 8 attacking addresses x 64 silent connections > the 160 descriptors the server may open.
    server = await start_server(tmp_path, files=160, MAX_CLIENTS="1", HANDSHAKE_TIMEOUT="30")
    servers.append(server)
    attack = [
        sock
        for source in [f"127.0.0.{n}" for n in range(2, 10)]
        for sock in silent_connections(server.port, 64, source)
    ]
    await asyncio.sleep(0.5)
    try:
        seconds = await server.healthz(5)
        again = await server.healthz(5)
    finally:
        for sock in attack:
            sock.close()
    print(f"honest client served in {seconds:.2f} s, then {again:.2f} s, beside 512 silent connections")
    output = await server.read_output()
    assert output.count("event=accept-failed") <= 3
    assert "Traceback" not in output
    assert len(output.encode()) < 20_000
