"""How tests and benchmarks start Chromium: the system build ($CHROMIUM, else Debian's
/usr/bin/chromium), else Playwright's own, headless, with fake camera and microphone."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, Playwright

ARGS = [
    # Without these, Chromium phones home at start and this network refuses it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Three fake cameras, so switching camera mid-call has somewhere to switch to.
    "--use-fake-device-for-media-stream=device-count=3",
]
ALLOW_MEDIA = "--use-fake-ui-for-media-stream"  # the permission prompt always answers "allow"
DENY_MEDIA = "--use-fake-ui-for-media-stream=deny"  # ... always answers "deny"


def executable() -> str | None:
    path = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    return path if Path(path).exists() else None  # None: Playwright's own Chromium


async def launch(playwright: Playwright, permission: str = ALLOW_MEDIA) -> Browser:
    return await playwright.chromium.launch(
        executable_path=executable(), headless=True, args=[*ARGS, permission]
    )
