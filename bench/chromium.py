"""How the benchmarks start Chromium: the system build ($CHROMIUM or Debian's
/usr/bin/chromium) with a fake camera and microphone, else Playwright's own build."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, Playwright

ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # Without these, Chromium phones home at start and this network refuses it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def executable() -> str | None:
    path = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    return path if Path(path).exists() else None


async def launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=executable(), headless=True, args=ARGS)
