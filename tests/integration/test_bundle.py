"""The client as served (server/bundle.py, setting BUNDLE): with esbuild installed, the
page loads the bundle's entry and the chunks it imports, a feature chunk comes with
`import()`; live reload serves the new build under the new version; a broken source or
BUNDLE=0 serves public/ module by module."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import aiohttp
import pytest

from server.bundle import ESBUILD
from server.config import ReloadMode
from tests.support.liveserver import LiveServer, StartServer

pytestmark = pytest.mark.skipif(
    not ESBUILD.is_file(), reason="esbuild is not installed (scripts/setup installs it)"
)

MARKER = "bundle-marker-7f3a"


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, str, dict[str, str]]:
    async with http.get(url) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def page_assets(http: aiohttp.ClientSession, live: LiveServer) -> tuple[str, list[str]]:
    """The asset base and the modules the page names (entry and preloads)."""
    _, html, _ = await fetch(http, live.url)
    base = re.search(r'src="(/assets/[0-9a-f]+/)app\.js"', html)
    assert base, html[:500]
    preload = re.findall(r'rel="modulepreload" href="/assets/[0-9a-f]+/([^"]+)"', html)
    return base.group(1), preload


async def all_of_it(http: aiohttp.ClientSession, live: LiveServer, base: str, names: list[str]) -> str:
    texts = []
    for name in ["app.js", *names]:
        status, text, _ = await fetch(http, live.url.rstrip("/") + base + name)
        assert status == 200, name
        texts.append(text)
    return "\n".join(texts)


async def test_the_page_loads_the_bundle_and_a_feature_chunk_comes_later(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server()
    base, preload = await page_assets(http, live)
    assert preload and all(re.fullmatch(r"chunk-[A-Z0-9]+\.js", name) for name in preload)
    status, entry, headers = await fetch(http, live.url.rstrip("/") + base + "app.js")
    assert status == 200 and headers["Cache-Control"].endswith("immutable")
    # One file where the sources have a module per concern: no relative imports of them.
    assert "./core/signalling.js" not in entry and "./calls/calls.js" not in entry
    # The features are a chunk of their own, imported when needed.
    lazy = re.findall(r'import\("\./(chunk-[A-Z0-9]+\.js|features-[A-Z0-9]+\.js)"\)', entry)
    assert lazy, entry[:300]
    status, feature, _ = await fetch(http, live.url.rstrip("/") + base + lazy[0])
    words = "An update is ready"  # said by public/features.js
    assert status == 200 and words in feature and words not in entry and len(feature) > len(entry)
    # One stylesheet instead of five, with every one's rules.
    _, html, _ = await fetch(http, live.url)
    sheets = re.findall(r'rel="stylesheet" href="/assets/[0-9a-f]+/([^"]+)"', html)
    assert sheets == ["styles.css"]
    status, css, _ = await fetch(http, live.url.rstrip("/") + base + "styles.css")
    assert status == 200 and "@import" not in css
    for name in ("style.css", "verify.css", "messages.css", "files.css", "spaces.css"):
        first_rule = (live.settings.public_dir / name).read_text().split("{")[0].split("*/")[-1].strip()
        assert first_rule.split(",")[0].split()[0] in css, name
    # Workers and the service worker are not bundled: still served from public/.
    status, _, _ = await fetch(http, live.url.rstrip("/") + "/sw.js")
    assert status == 200


async def test_live_reload_serves_the_new_build_under_the_new_version(
    start_server: StartServer, asset_dirs: tuple[Path, Path], http: aiohttp.ClientSession
) -> None:
    public, templates = asset_dirs
    live = await start_server(reload=ReloadMode.ASSETS, public_dir=public, templates_dir=templates)
    async with http.ws_connect(live.ws_url) as ws:
        first = await ws.receive_json(timeout=5)
        base, preload = await page_assets(http, live)
        assert MARKER not in await all_of_it(http, live, base, preload)
        names = public / "core" / "names.js"
        names.write_text(names.read_text() + f"\nconsole.debug('{MARKER}');\n")
        fresh = await ws.receive_json(timeout=10)
        assert fresh["type"] == "ready" and fresh["version"] != first["version"]
    new_base, new_preload = await page_assets(http, live)
    assert new_base != base
    assert MARKER in await all_of_it(http, live, new_base, new_preload)


async def test_a_source_that_does_not_build_is_served_as_it_is(
    start_server: StartServer,
    asset_dirs: tuple[Path, Path],
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    public, templates = asset_dirs
    (public / "core" / "names.js").write_text("export const broken = ;\n")
    caplog.set_level(logging.WARNING, logger="server.bundle")
    live = await start_server(public_dir=public, templates_dir=templates)
    assert any("event=bundle-failed" in r.getMessage() for r in caplog.records)
    base, preload = await page_assets(http, live)
    assert preload == [] or not any(name.startswith("chunk-") for name in preload)
    _, entry, _ = await fetch(http, live.url.rstrip("/") + base + "app.js")
    assert "./core/signalling.js" in entry  # the source module, its imports as written


async def test_bundle_off_serves_public_module_by_module(
    start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    live = await start_server(bundle=False)
    base, preload = await page_assets(http, live)
    assert "core/signalling.js" in preload
    _, html, _ = await fetch(http, live.url)
    assert len(re.findall(r'rel="stylesheet"', html)) == 5
    _, entry, _ = await fetch(http, live.url.rstrip("/") + base + "app.js")
    assert "./core/signalling.js" in entry
