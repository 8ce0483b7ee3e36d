"""Live reload in a real browser (issue 4): an open page reloads by itself within a
fraction of a second of a file edit, shows the change, and keeps its peer id."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from server.assets import compute_version
from server.config import ReloadMode
from tests.support.liveserver import StartServer

NewUser = Callable[..., Awaitable[Any]]  # the `new_user` fixture of tests/browser/conftest.py


async def test_open_page_reloads_and_shows_the_edit(
    start_server: StartServer, asset_dirs: tuple[Path, Path], new_user: NewUser
) -> None:
    public, templates = asset_dirs
    live = await start_server(reload=ReloadMode.ASSETS, public_dir=public, templates_dir=templates)
    alice = await new_user(live, "Alice", wait_media=False)
    page = alice.page
    peer_id = await page.evaluate("window.__lanCall.id")
    old_version = await page.evaluate("document.body.dataset.version")
    assert old_version == live.hub.version
    await page.evaluate("window.__sameDocument = true")  # gone once the page reloads
    probe = page.locator("#livereload-probe")
    assert await probe.count() == 0

    # One save of a template and a stylesheet together (a single reload).
    index, css = templates / "index.html", public / "style.css"
    page_source = index.read_text()
    assert page_source.count("</main>") == 1
    edited = time.monotonic()
    index.write_text(page_source.replace("</main>", '<p id="livereload-probe">Edited live</p>\n</main>'))
    css.write_text(css.read_text() + "\n#livereload-probe { color: rgb(1, 2, 3); }\n")

    await expect(probe).to_have_text("Edited live", timeout=5000)
    await expect(probe).to_be_visible()
    await expect(probe).to_have_css("color", "rgb(1, 2, 3)")  # the new stylesheet, not a cached one
    seconds = time.monotonic() - edited
    assert await page.evaluate("window.__sameDocument") is None, "the change showed without a reload?"
    new_version = await page.evaluate("document.body.dataset.version")
    assert new_version == live.hub.version == compute_version([public, templates]) != old_version

    # Back online under the same id: the resume token survived the reload.
    await alice.wait_for("window.__lanCall?.link === 'online' && window.__lanCall.id")
    assert await page.evaluate("window.__lanCall.id") == peer_id
    assert seconds < 3, f"reload took {seconds:.2f} s"  # the benchmark measures the real figure
