"""What the server shows to and accepts from strangers: Origin scheme and Host checks
(DNS rebinding), the Server header, HSTS, the echoed subprotocol, and the log line a
malformed request costs."""

from __future__ import annotations

import asyncio
import logging
import ssl

import aiohttp
import pytest

from tests.support.liveserver import StartServer


async def raw_request(port: int, client_ssl: ssl.SSLContext, request: bytes) -> bytes:
    """One raw HTTPS request: no client-side normalisation of Host or headers."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ssl, server_hostname="localhost"
    )
    writer.write(request)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return response


def upgrade(host: str, origin: str | None, protocol: str | None = None) -> bytes:
    lines = [
        "GET /rtc HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if protocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def first_line_and_headers(port: int, client_ssl: ssl.SSLContext, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ssl, server_hostname="localhost"
    )
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    return status_of(head), head


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:{port}",
        "ws://localhost:{port}",
        "wss://localhost:{port}",
        "file://localhost:{port}",
        "null",
        "chrome-extension://localhost:{port}",
        "https://evil.example",
        "https://localhost:1",
        "https://localhost:{port}@evil.example",
    ],
)
async def test_websocket_origin_must_be_this_https_origin(
    start_server: StartServer, client_ssl: ssl.SSLContext, origin: str
) -> None:
    live = await start_server()
    request = upgrade(f"localhost:{live.port}", origin.format(port=live.port))
    status, _ = await first_line_and_headers(live.port, client_ssl, request)
    assert status in (403, 421), (origin, status)


async def test_websocket_from_own_origin_and_allow_list_is_accepted(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server(allowed_origins=frozenset({"https://app.example"}))
    for host, origin in [
        (f"localhost:{live.port}", f"https://localhost:{live.port}"),
        (f"127.0.0.1:{live.port}", f"https://127.0.0.1:{live.port}"),
        (f"[::1]:{live.port}", f"https://[::1]:{live.port}"),
        (f"localhost:{live.port}", "https://app.example"),
        (f"app.example:{live.port}", "https://app.example"),
        (f"localhost:{live.port}", None),
    ]:
        status, _ = await first_line_and_headers(live.port, client_ssl, upgrade(host, origin))
        assert status == 101, (host, origin)


@pytest.mark.parametrize("path", ["", "rtc", "trust", "healthz", "assets/x/app.js"])
@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "evil.example", "localhost.evil.example:{port}", "localhost:1", ""]
)
async def test_dns_rebinding_host_is_refused_on_every_route(
    start_server: StartServer, client_ssl: ssl.SSLContext, path: str, host: str
) -> None:
    live = await start_server()
    host = host.format(port=live.port)
    request = f"GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    if path == "rtc":
        request = upgrade(host, f"https://{host}")
    status, _ = await first_line_and_headers(live.port, client_ssl, request)
    assert status in (400, 421), (path, host, status)


async def test_server_header_hides_versions_and_hsts_is_sent(
    start_server: StartServer, http: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server()
    for path in ("", "healthz", "nope.js"):
        async with http.get(live.url + path) as resp:
            assert resp.headers["Server"] == "lan-call"
            assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
    junk = await raw_request(
        live.port, client_ssl, b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n"
    )
    assert status_of(junk) == 400
    assert b"Python" not in junk and b"aiohttp" not in junk


@pytest.mark.parametrize(
    ("offered", "echoed"),
    [
        ("lan-call", "lan-call"),
        ("lan-call, other", "lan-call"),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("a" * 7000, None),
        ("bad token", None),
        ('quote"d', None),
    ],
)
async def test_subprotocol_is_echoed_only_when_a_short_token(
    start_server: StartServer, client_ssl: ssl.SSLContext, offered: str, echoed: str | None
) -> None:
    live = await start_server()
    request = upgrade(f"localhost:{live.port}", f"https://localhost:{live.port}", offered)
    status, head = await first_line_and_headers(live.port, client_ssl, request)
    assert status == 101
    lines = head.decode("latin-1").split("\r\n")
    got = [
        line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("sec-websocket-protocol:")
    ]
    assert got == ([echoed] if echoed else [])


async def test_malformed_requests_log_one_short_line_each_rate_limited(
    start_server: StartServer, client_ssl: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    live = await start_server()
    caplog.set_level(logging.DEBUG)
    for _ in range(20):
        response = await raw_request(
            live.port, client_ssl, b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n"
        )
        assert status_of(response) == 400
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert records, "a malformed request should still be logged"
    assert len(records) <= 5, "rate limited"
    for record in records:
        assert record.levelno <= logging.WARNING
        assert record.exc_info is None and record.exc_text is None
        assert len(record.getMessage()) < 200 and "event=bad-request" in record.getMessage()
