"""`python -m server` as a user runs it: env settings, generated CA, HTTPS with the CA
trusted, printed URLs, exit codes, and SIGTERM/SIGINT shutdown."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from server.netinfo import public_urls
from tests.support.net import free_port
from tests.support.servers import ServerProcess, run_to_exit, stop_process
from tests.support.servers import server_env as support_env


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    settings = {"PORT": str(free_port()), "CERTS_DIR": str(tmp_path / "certs")}
    settings.update(STATE_FILE=str(tmp_path / "state.json"), **extra)
    return support_env(**settings)


async def start(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    server = ServerProcess(env)
    await server.start()
    await server.wait_for_banner(within=15)
    assert server.proc is not None
    return server.proc, server.output


async def test_serves_https_with_generated_ca_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    proc, output = await start(env)
    port = int(env["PORT"])
    try:
        for url in public_urls(None, port):
            assert url in output, f"{url} not printed"
        assert "0.0.0.0" not in output
        assert "█" in output or "▀" in output, "terminal QR code missing"
        ca = tmp_path / "certs" / "ca.pem"
        assert str(ca) in output and ca.is_file()
        context = ssl.create_default_context(cafile=str(ca))  # verification stays on
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            async with http.get(f"https://localhost:{port}/healthz") as resp:
                assert (await resp.json())["status"] == "ok"
            async with http.get(f"https://127.0.0.1:{port}/") as resp:
                assert resp.status == 200
            ws = await http.ws_connect(f"wss://localhost:{port}/rtc")
            ready = await ws.receive_json()
            assert ready["type"] == "ready"
            code, seconds = await stop_process(proc)
            closing = await asyncio.wait_for(ws.receive(), 2)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert closing.data == 1001  # Going Away: clients reconnect promptly
        assert code == 0 and seconds < 2.0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_second_start_reuses_ca(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    proc, _ = await start(env)
    await stop_process(proc, signal.SIGINT)
    ca_before = (tmp_path / "certs" / "ca.pem").read_bytes()
    proc, _output = await start(env)
    code, _ = await stop_process(proc, signal.SIGINT)
    assert code == 0
    assert (tmp_path / "certs" / "ca.pem").read_bytes() == ca_before


async def test_given_key_and_cert_are_used_and_certs_dir_untouched(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    leaf.private_key_pem.write_to_path(str(key))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    env = server_env(tmp_path, KEY=str(key), CERT=str(cert))
    proc, _output = await start(env)
    try:
        assert not (tmp_path / "certs").exists()
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        context = ssl.create_default_context(cafile=str(ca_file))
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http,
            http.get(f"https://localhost:{env['PORT']}/ca.pem") as resp,
        ):
            assert resp.status == 404  # no local CA to hand out (and the given cert verifies)
    finally:
        await stop_process(proc)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"PORT": "abc"}, "PORT='abc'"),
        ({"KEY": "/missing/key.pem", "CERT": "/missing/cert.pem"}, "KEY='/missing/key.pem'"),
        ({"RELOAD": "bogus"}, "RELOAD='bogus'"),
    ],
)
def test_bad_settings_exit_2_with_one_line(tmp_path: Path, extra: dict[str, str], expected: str) -> None:
    env = server_env(tmp_path, **extra)
    result = run_to_exit(env)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreadable_pem_exits_2(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    cert.write_text("not pem at all")
    env = server_env(tmp_path, KEY=str(key), CERT=str(cert))
    result = run_to_exit(env)
    assert result.returncode == 2
    assert "KEY=" in result.stderr and "CERT=" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = server_env(tmp_path, PORT=str(port), HOST="127.0.0.1")
        result = run_to_exit(env)
    assert result.returncode == 2
    assert f"PORT={port}" in result.stderr and "Traceback" not in result.stderr


def test_help_prints_the_settings_and_starts_nothing(tmp_path: Path) -> None:
    """Issue 19 (operators, 18): `python -m server --help` started a server."""
    env = server_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "server", "--help"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and result.stderr == ""
    assert "usage:" in result.stdout and "REDIS_URL" in result.stdout and "PORT" in result.stdout
    assert not (tmp_path / "certs").exists()  # no certificate made: nothing was started
