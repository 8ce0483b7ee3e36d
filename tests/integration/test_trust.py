"""/trust: the app's dark look, the visitor's platform first and open, and the CA's
SHA-256 fingerprint exactly as the terminal banner prints it."""

from __future__ import annotations

import re

import aiohttp
import pytest

from server.banner import banner
from server.tls import fingerprint
from tests.support.liveserver import StartServer

USER_AGENTS = {
    "ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "android": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36",
    "windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0",
    "macos": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "linux": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0",
    "firefox": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
}


def sections(page: str) -> list[tuple[str, bool]]:
    """(platform, open) of each platform section, in page order."""
    return [
        (m.group(2), m.group(3) == " open")
        for m in re.finditer(r'<details class="platform"( data-platform="(\w+)")( open)?>', page)
    ]


@pytest.mark.parametrize("platform", list(USER_AGENTS))
async def test_visitors_platform_comes_first_and_open(
    start_server: StartServer, http: aiohttp.ClientSession, platform: str
) -> None:
    live = await start_server()
    async with http.get(live.url + "trust", headers={"User-Agent": USER_AGENTS[platform]}) as resp:
        page = await resp.text()
    found = sections(page)
    assert found[0] == (platform, True)
    assert [open_ for _, open_ in found[1:]] == [False] * 5
    assert {name for name, _ in found} == set(USER_AGENTS)


async def test_unknown_platform_shows_every_section_closed(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    async with http.get(live.url + "trust", headers={"User-Agent": "curl/8"}) as resp:
        page = await resp.text()
    assert [open_ for _, open_ in sections(page)] == [False] * 6


async def test_fingerprint_matches_the_terminal_banner(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    ca = live.cert_files.ca
    assert ca is not None
    async with http.get(live.url + "trust") as resp:
        page = await resp.text()
    printed = fingerprint(ca)
    assert f"SHA-256 {printed}" in banner([live.url], ca, qr=False)
    assert f'<code data-testid="ca-fingerprint">{printed}</code>' in page


async def test_trust_page_is_dark_like_the_app(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    async with http.get(f"{live.url}assets/{live.hub.version}/trust.css") as resp:
        css = await resp.text()
    app_css = (live.settings.public_dir / "style.css").read_text()
    background = re.search(r"--bg:\s*(#[0-9a-f]{6})", app_css)
    assert background is not None
    assert "color-scheme:dark" in css.replace(" ", "") and "light" not in css
    assert background.group(1) in css and "prefers-color-scheme" not in css
