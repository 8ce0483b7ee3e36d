"""A person using Firefox ESR in a browser test: `tests/support/firefox_driver.mjs` (Node,
puppeteer-core over WebDriver BiDi) runs the browser; this side sends it one JSON line
per step. The same reading as `browseruser.User` (the page's `window.__lanCall` hook),
for mixed-engine tests (issue 20)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

from server.config import PROJECT_ROOT
from tests.support.browseruser import READY

DRIVER = PROJECT_ROOT / "tests" / "support" / "firefox_driver.mjs"
PUPPETEER = PROJECT_ROOT / "node_modules" / "puppeteer-core"
TIMEOUT = 15.0


def missing() -> str | None:
    """Why Firefox tests cannot run here (one line), or None."""
    firefox = os.environ.get("FIREFOX") or shutil.which("firefox-esr") or shutil.which("firefox")
    if firefox is None:
        return "Firefox ESR is not installed (scripts/setup --browser installs Debian's firefox-esr)"
    if shutil.which("node") is None or not PUPPETEER.is_dir():
        return "puppeteer-core is not installed (scripts/setup runs npm ci)"
    return None


def role(name: str, kind: str = "button") -> str:
    """A selector for what a person sees: the element of this ARIA role and accessible name."""
    return f'::-p-aria([name="{name}"][role="{kind}"])'


class FirefoxUser:
    """One Firefox, one page of the app, as `name`."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, version: str) -> None:
        self.name = name
        self.proc = proc
        self.version = version
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, url: str, name: str, width: int = 1280, height: int = 800, *, private: bool = False
    ) -> FirefoxUser:
        """Firefox with the app open at `url` as `name`, online; `private`: in a private window."""
        firefox = os.environ.get("FIREFOX") or shutil.which("firefox-esr") or shutil.which("firefox") or ""
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            cwd=PROJECT_ROOT,
            env={**os.environ, "FIREFOX": firefox, "FIREFOX_PRIVATE": "1" if private else "0"},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        assert proc.stdout is not None
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        user = cls(name, proc, str(first.get("value")))
        await user._ask("open", url=url, name=name, width=width, height=height)
        await user.wait_for(f"() => {READY}", timeout=30)
        return user

    async def _ask(self, op: str, timeout: float = TIMEOUT + 5, **fields: Any) -> Any:
        async with self._lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            request_id = next(self._ids)
            self.proc.stdin.write((json.dumps({"id": request_id, "op": op, **fields}) + "\n").encode())
            await self.proc.stdin.drain()
            answer = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), timeout))
        assert answer["id"] == request_id, answer
        if not answer["ok"]:
            raise AssertionError(f"{self.name} (Firefox): {op} failed: {answer['error']}")
        return answer["value"]

    async def js(self, source: str, arg: Any = None) -> Any:
        """Call a JS function (its source) in the page with `arg`."""
        return await self._ask("evaluate", source=source, arg=arg)

    async def wait_for(self, source: str, timeout: float = TIMEOUT, arg: Any = None) -> Any:
        """Wait until a JS function (its source) returns something truthy; returns it."""
        return await self._ask("waitFor", timeout + 5, source=source, arg=arg, timeoutMs=int(timeout * 1000))

    @property
    async def id(self) -> str:
        return str(await self.js("() => window.__lanCall.id"))

    async def click(self, selector: str, *, within: str | None = None, text: str = "") -> None:
        """Press what `selector` finds (CSS, or `role()`), optionally inside the first
        visible `within` (CSS) whose text includes `text`."""
        await self._ask("click", selector=selector, container=within, text=text)

    async def choose_files(
        self, selector: str, paths: list[Path], *, within: str | None = None, text: str = ""
    ) -> None:
        """Press a button that opens the file chooser, and choose `paths` there."""
        await self._ask(
            "chooseFiles", selector=selector, container=within, text=text, paths=[str(p) for p in paths]
        )

    async def fill(self, selector: str, value: str, press: str | None = None) -> None:
        await self._ask("fill", selector=selector, value=value, press=press)

    async def reload(self) -> None:
        await self._ask("reload")
        await self.wait_for(f"() => {READY}", timeout=30)

    async def viewport(self, width: int, height: int) -> None:
        await self._ask("viewport", width=width, height=height)

    async def screenshot(self, path: Path, *, full_page: bool = False) -> None:
        await self._ask("screenshot", path=str(path), fullPage=full_page)

    async def page_errors(self) -> list[str]:
        """Uncaught errors and rejections on the page so far, each with where it came from."""
        return list(await self.js("() => window.__pageErrors || []"))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._ask("close", timeout=20)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()
