"""Browser fixtures: one headless Chromium per session with a fake camera and microphone.

Each user made by `new_user` is its own browser context (own storage, own socket), so
several users in one browser are several people. A second Chromium whose media
permission prompt always answers "deny" is started only for the tests that need it.
Uncaught page errors fail the test that caused them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

from server.config import PROJECT_ROOT
from tests.support import chromium
from tests.support.browseruser import READY, User

ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
async def playwright_driver() -> AsyncIterator[Playwright]:
    async with async_playwright() as p:
        yield p


@pytest.fixture(scope="session")
async def browser(playwright_driver: Playwright) -> AsyncIterator[Browser]:
    browser = await chromium.launch(playwright_driver, chromium.ALLOW_MEDIA)
    yield browser
    await browser.close()


@pytest.fixture
async def trusting_browser(playwright_driver: Playwright) -> AsyncIterator[Browser]:
    """Chromium that trusts the test server's certificate as a real install would (a
    service worker is refused over a certificate the browser does not trust, even with
    the context's ignore_https_errors)."""
    browser = await playwright_driver.chromium.launch(
        executable_path=chromium.executable(),
        headless=True,
        args=[*chromium.ARGS, chromium.ALLOW_MEDIA, "--ignore-certificate-errors"],
    )
    yield browser
    await browser.close()


@pytest.fixture(scope="session")
async def denied_browser(playwright_driver: Playwright) -> AsyncIterator[Browser]:
    """A browser in which the user refused camera and microphone access."""
    browser = await chromium.launch(playwright_driver, chromium.DENY_MEDIA)
    yield browser
    await browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


NewUser = Callable[..., Awaitable[User]]


@pytest.fixture
async def new_user(browser: Browser) -> AsyncIterator[NewUser]:
    """`await new_user(live, "Alice")`: a person with the app open and online.

    Options: `browser=` another browser, `viewport={"width": .., "height": ..}`,
    `before_load=async fn(page)` (e.g. to route the WebSocket), `wait_media=False`.
    """
    contexts: list[BrowserContext] = []
    users: list[User] = []

    async def make(
        live: Any,
        name: str,
        *,
        browser: Browser = browser,
        viewport: dict[str, int] | None = None,
        before_load: Callable[[Page], Awaitable[None]] | None = None,
        wait_media: bool = True,
    ) -> User:
        context = await browser.new_context(
            ignore_https_errors=True, viewport=viewport or {"width": 1280, "height": 800}
        )
        contexts.append(context)
        # The app remembers names in localStorage; seed it as if the user had typed it.
        # (Only once: init scripts run on every load, and a reload must keep a rename.)
        await context.add_init_script(
            f"if (!localStorage.getItem('lanCall.name')) localStorage.setItem('lanCall.name', {name!r})"
        )
        page = await context.new_page()
        user = User(name, page, context)
        users.append(user)
        page.on("pageerror", lambda error: user.errors.append(str(error)))
        if before_load is not None:
            await before_load(page)
        await page.goto(live.url)
        await user.wait_for(f"{READY} && window.__lanCall.id")
        if wait_media:
            await user.wait_for("window.__lanCall.media !== 'pending'")
        return user

    yield make
    errors = [f"{u.name}: {e}" for u in users for e in u.errors]
    for context in contexts:
        await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
