"""Text assets and pages go out brotli- or gzip-compressed per Accept-Encoding, with
`Vary: Accept-Encoding`, an ETag per encoding, and 304s that work for each."""

from __future__ import annotations

import gzip

import aiohttp
import brotli
import pytest

from tests.support.liveserver import StartServer


@pytest.fixture
async def raw_http(client_ssl: object) -> aiohttp.ClientSession:  # type: ignore[misc]
    """A client that shows the bytes as sent (no decompression)."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=client_ssl),  # type: ignore[arg-type]
        auto_decompress=False,
    ) as session:
        yield session


def decode(body: bytes, encoding: str | None) -> bytes:
    if encoding == "br":
        return bytes(brotli.decompress(body))
    if encoding == "gzip":
        return gzip.decompress(body)
    return body


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, deflate", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("identity", None),
        ("", None),
    ],
)
@pytest.mark.parametrize(
    "path", ["", "assets/{version}/core/signalling.js", "assets/{version}/style.css", "icons.svg"]
)
async def test_text_is_compressed_per_accept_encoding(
    start_server: StartServer, raw_http: aiohttp.ClientSession, accept: str, expected: str | None, path: str
) -> None:
    live = await start_server()
    url = live.url + path.format(version=live.hub.version)
    async with raw_http.get(url, headers={"Accept-Encoding": accept}) as resp:
        assert resp.status == 200
        assert resp.headers.get("Content-Encoding") == expected
        assert "Accept-Encoding" in resp.headers.get("Vary", "")
        body = decode(await resp.read(), expected)
    async with raw_http.get(url, headers={"Accept-Encoding": "identity"}) as resp:
        assert body == await resp.read()


async def test_compressed_is_much_smaller_and_etags_differ_per_encoding(
    start_server: StartServer, raw_http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    url = f"{live.url}assets/{live.hub.version}/style.css"
    sizes, etags = {}, {}
    for accept in ("identity", "gzip", "br"):
        async with raw_http.get(url, headers={"Accept-Encoding": accept}) as resp:
            sizes[accept] = len(await resp.read())
            etags[accept] = resp.headers["ETag"]
    assert sizes["br"] < sizes["gzip"] < 0.5 * sizes["identity"]
    assert len(set(etags.values())) == 3
    for accept, etag in etags.items():
        async with raw_http.get(url, headers={"Accept-Encoding": accept, "If-None-Match": etag}) as resp:
            assert resp.status == 304, accept


async def test_images_are_not_recompressed(
    start_server: StartServer, raw_http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    async with raw_http.get(live.url + "ca.pem", headers={"Accept-Encoding": "br"}) as resp:
        assert resp.status == 200 and "Content-Encoding" not in resp.headers
