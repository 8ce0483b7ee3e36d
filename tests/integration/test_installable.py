"""The installable app over real HTTPS: the web app manifest (its content type, icons,
share target), the service worker at the root scope, and the share target's POST when
no service worker has taken it yet."""

from __future__ import annotations

import json
import re
import struct

import aiohttp

from tests.support.liveserver import StartServer


async def test_manifest_is_served_as_a_manifest_and_linked(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    async with http.get(live.url) as resp:
        assert '<link rel="manifest" href="/manifest.webmanifest">' in await resp.text()
    async with http.get(live.url + "manifest.webmanifest") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/manifest+json"
        manifest = json.loads(await resp.text())
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        async with http.get(live.url + icon["src"].lstrip("/")) as resp:
            assert resp.status == 200 and resp.content_type == icon["type"]
    share = manifest["share_target"]
    assert share["action"] == "/share" and share["method"] == "POST"
    assert share["enctype"] == "multipart/form-data"
    assert share["params"]["files"][0]["name"] == "files"


async def test_service_worker_is_served_from_the_root(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    async with http.get(live.url + f"sw.js?v={live.hub.version}") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/javascript"
        # Revalidated on every check, so a new version's worker is seen at once.
        assert resp.headers["Cache-Control"] == "no-cache"
        assert "share" in await resp.text()


async def test_share_without_a_service_worker_goes_back_to_the_app(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    form = aiohttp.FormData()
    form.add_field("files", b"hello", filename="a.txt", content_type="text/plain")
    async with http.post(live.url + "share", data=form, allow_redirects=False) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == "/?shared=unavailable"


async def test_an_iphone_gets_a_home_screen_icon(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    """Issue 19 (16): Safari takes no SVG for the home screen; a 180x180 PNG it is."""
    live = await start_server()
    async with http.get(live.url) as resp:
        page = await resp.text()
    found = re.search(r'<link rel="apple-touch-icon" href="([^"]+)">', page)
    assert found, "no apple-touch-icon link"
    async with http.get(live.url + found.group(1).lstrip("/")) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        png = await resp.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (180, 180)
