"""The HTTP surface over real HTTPS: pages, CA download, health, static files,
traversal attempts and security headers."""

from __future__ import annotations

import asyncio
import json
import ssl
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from server import views
from server.app import DOCUMENT_ONLY, SECURITY_HEADERS
from tests.support.liveserver import StartServer


async def test_index_renders_version_and_config(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(ring_timeout=7)
    async with http.get(live.url) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert resp.headers["Cache-Control"] == "no-store"
        html = await resp.text()
    assert live.hub.version in html
    assert f"/assets/{live.hub.version}/" in html
    assert "ringTimeoutMs" in html and "7000" in html
    assert "<script>" not in html.replace(" ", ""), "inline script would violate the CSP"


async def test_security_headers_on_every_response(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    for path in ("", "healthz", "ca.pem", "trust", "qr.svg", "nope.js"):
        async with http.get(live.url + path) as resp:
            for name, value in SECURITY_HEADERS.items():
                assert resp.headers.get(name) == value, (path, name)
    # Versioned scripts and styles carry what a subresource obeys, not the document-only
    # headers (half of each response's header bytes on a first load).
    for asset in (f"{live.hub.version}/app.js", f"{live.hub.version}/style.css", "x/style.css"):
        async with http.get(f"{live.url}assets/{asset}") as resp:
            assert resp.status == 200
            for name, value in SECURITY_HEADERS.items():
                assert resp.headers.get(name) == (None if name in DOCUMENT_ONLY else value), (asset, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "camera=(self)" in SECURITY_HEADERS["Permissions-Policy"]


async def test_ca_download_and_trust_page(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server()
    async with http.get(live.url + "ca.pem") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/x-x509-ca-cert"
        assert "attachment" in resp.headers["Content-Disposition"]
        body = await resp.read()
    assert body == live.cert_files.ca.read_bytes() if live.cert_files.ca else False
    assert b"PRIVATE KEY" not in body
    async with http.get(live.url + "trust") as resp:
        page = await resp.text()
    for platform in ("iPhone", "Android", "macOS", "Windows", "Linux", "Firefox"):
        assert platform in page
    assert 'href="/ca.pem"' in page


async def test_qr_code_encodes_first_url(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server()
    async with http.get(live.url + "qr.svg") as resp:
        assert resp.status == 200 and resp.content_type == "image/svg+xml"
        svg = await resp.text()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')  # renders in <img>
    assert f"<title>{live.url}</title>" in svg


async def test_healthz(
    start_server: StartServer, http: aiohttp.ClientSession, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server()
    async with http.ws_connect(live.ws_url):
        await asyncio.sleep(0.05)
        async with http.get(live.url + "healthz") as resp:
            data = await resp.json()
    assert data["status"] == "ok" and data["clients"] == 1
    assert data["assets"] == live.hub.version and data["version"]
    assert isinstance(data["uptime"], float) and data["uptime"] >= 0


async def test_healthz_tells_strangers_only_that_it_is_up(start_server: StartServer) -> None:
    """Issue 18 finding 33: how many people are here is for this machine, or METRICS_TOKEN."""
    live = await start_server(metrics_token="s3cret")
    assert live.app is not None
    from_lan = mock.Mock()
    from_lan.get_extra_info.side_effect = lambda key, default=None: (
        ("192.168.1.20", 40000) if key == "peername" else default
    )

    async def health(headers: dict[str, str]) -> dict[str, object]:
        request = make_mocked_request("GET", "/healthz", headers=headers, app=live.app, transport=from_lan)
        response = await views.healthz(request)
        assert isinstance(response, web.Response) and response.text is not None
        data: dict[str, object] = json.loads(response.text)
        return data

    stranger = await health({})
    assert stranger["status"] == "ok" and "clients" not in stranger and "peers" not in stranger
    assert {"clients", "peers"} <= set(await health({"Authorization": "Bearer s3cret"}))


async def test_static_files_and_cache_busting(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server()
    version = live.hub.version
    async with http.get(f"{live.url}assets/{version}/trust.css") as resp:
        assert resp.status == 200 and resp.content_type == "text/css"
        assert "immutable" in resp.headers["Cache-Control"]
    async with http.get(f"{live.url}assets/0ldversion00/trust.css") as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
    async with http.get(f"{live.url}trust.css") as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    [
        "missing.js",
        "assets/v/missing.js",
        "..%2fserver%2fconfig.py",
        "%2e%2e%2fserver%2fconfig.py",
        "assets/v/..%2f..%2fserver%2fconfig.py",
        "assets/v/%2e%2e/%2e%2e/pyproject.toml",
        "..%5cserver%5cconfig.py",
        "%2fetc%2fpasswd",
        "assets/v/%2fetc%2fpasswd",
        "..%252fserver%252fconfig.py",
        "%00",
        ".git/config",
        "assets/",
        "templates/index.html",
    ],
)
async def test_missing_files_traversal_and_listings_are_404(
    start_server: StartServer, client_ssl: ssl.SSLContext, path: str
) -> None:
    live = await start_server()
    # Raw request line, so no client-side normalisation hides a traversal.
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", live.port, ssl=client_ssl, server_hostname="localhost"
    )
    writer.write(f"GET /{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    status_line = response.split(b"\r\n", 1)[0]
    assert b" 404 " in status_line or b" 400 " in status_line, (path, status_line)
    assert b"SETTINGS" not in response and b"root:" not in response and b"[project]" not in response


async def test_directory_is_never_listed(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    live = await start_server()
    async with http.get(live.url + "assets/x/") as resp:
        assert resp.status == 404


async def test_scripts_and_styles_are_served_minified_with_etag(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    source = (live.settings.public_dir / "core" / "signalling.js").read_text()
    async with http.get(f"{live.url}assets/{live.hub.version}/core/signalling.js") as resp:
        assert resp.status == 200 and resp.content_type == "text/javascript"
        body = await resp.text()
        etag = resp.headers["ETag"]
    assert len(body) < 0.8 * len(source) and "@param" not in body and "export class Signalling" in body
    async with http.get(f"{live.url}core/signalling.js", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304 and resp.headers["Cache-Control"] == "no-cache"
    plain = await start_server(minify=False)
    async with http.get(f"{plain.url}core/signalling.js") as resp:
        assert await resp.text() == source


async def test_the_qr_decoder_is_served_from_npm_and_nothing_else_is(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    """/vendor/jsqr.js is npm's jsQR (scripts/setup installs it), for browsers without a
    BarcodeDetector; any other name under /vendor is not found, and nothing is listed."""
    live = await start_server()
    async with http.get(f"{live.url}vendor/jsqr.js") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        body = await response.text()
        assert "jsQR" in body and len(body) > 50_000
        etag = response.headers["ETag"]
    async with http.get(f"{live.url}vendor/jsqr.js", headers={"If-None-Match": etag}) as response:
        assert response.status == 304
    for name in ("jsQR.js", "..%2Fpackage.json", "index.d.ts", ""):
        async with http.get(f"{live.url}vendor/{name}") as response:
            assert response.status == 404, name
