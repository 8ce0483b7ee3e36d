"""Waiting for a condition, always bounded in time, so a hang fails instead of stalling a run."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]], within: float, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll `check` (plain or async) until it returns something truthy; return that value."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} still not true after {within:g} s (last value {value!r})")
        await asyncio.sleep(interval)


async def wait_healthy(
    url: str, ca: Path, within: float = 20, process: asyncio.subprocess.Process | None = None
) -> None:
    """Poll `url`healthz until it answers 200, verifying TLS against the server's own CA
    (which may not exist yet when the server is still starting)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process is not None and process.returncode is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            context = ssl.create_default_context(cafile=str(ca))
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http,
                http.get(url + "healthz") as response,
            ):
                if response.status == 200:
                    return
        except (aiohttp.ClientError, OSError):  # not listening yet, or no CA written yet
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the server at {url} did not become healthy in {within:g} s")
