"""Reconnect time (issue 9, Users 3 and 4): how long open tabs take to be 'online' again.

    .venv/bin/python bench/reconnect.py [--tabs 4] [--runs 3] [--down 8] [--freeze 15]

The real server (`python -m server`) runs in its own process. Each run stops it with
SIGTERM, keeps it down for --down seconds, starts it again on the same port, and reports
for every tab the time from "server back" (its port accepts connections again) to the
tab's link being 'online' again (window.__lanCall.link, sampled in the page every 10 ms
against the same wall clock). Target: median and maximum <= 1.5 s.

Then, with --freeze > 0, the server is frozen with SIGSTOP (it keeps its sockets, answers
nothing) for that long: printed is how long each tab took to notice (leave 'online';
target ~10 s) and, after SIGCONT, to be online again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import Page, async_playwright  # noqa: E402

from tests.support import chromium  # noqa: E402

# Every transition of the page's link state, with the browser's wall-clock time.
INIT_SCRIPT = """
(() => {
  window.__links = [];
  let last = null;
  setInterval(() => {
    const link = window.__lanCall?.link ?? null;
    if (link !== last) window.__links.push([link, Date.now()]);
    last = link;
  }, 10);
})();
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, port: int, work: Path) -> None:
        self.port = port
        self.env = dict(os.environ)
        self.env.update(
            HOST="127.0.0.1",
            PORT=str(port),
            CERTS_DIR=str(work / "certs"),
            STATE_FILE=str(work / "peers.json"),
            RELOAD="off",
            ECHO="0",
        )
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        """Start; returns the wall-clock ms at which the port first accepts a connection."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server",
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.005)
                continue
            back = time.time() * 1000
            writer.close()
            return back
        raise RuntimeError("the server did not start within 30 s")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 10)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)


async def links(page: Page) -> list[tuple[str, float]]:
    return [(str(state), float(at)) for state, at in await page.evaluate("window.__links")]


async def wait_all(pages: list[Page], predicate: str, timeout: float) -> None:
    for page in pages:
        await page.wait_for_function(f"() => ({predicate})", timeout=timeout * 1000, polling=20)


def first_after(entries: list[tuple[str, float]], state: str, after: float, negate: bool = False) -> float:
    for link, at in entries:
        if at >= after and ((link != state) if negate else (link == state)):
            return at
    raise AssertionError(f"no {'non-' if negate else ''}{state} after {after}")


def summary(label: str, values: list[float]) -> None:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    print(
        f"{label}: median {statistics.median(values):.0f} ms, p90 {p90:.0f} ms, "
        f"max {max(values):.0f} ms (n={len(values)})"
    )


async def bench(tabs: int, runs: int, down: float, freeze: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-reconnect-") as tmp:
        server = Server(free_port(), Path(tmp))
        await server.start()
        url = f"https://localhost:{server.port}/"
        print(f"server {url}  tabs={tabs} runs={runs} down={down:g}s freeze={freeze:g}s")
        async with async_playwright() as pw:
            browser = await chromium.launch(pw)
            pages = []
            for n in range(tabs):  # one context each: separate people, separate sockets
                context = await browser.new_context(ignore_https_errors=True)
                await context.add_init_script(f"localStorage.setItem('lanCall.name', 'Tab {n + 1}')")
                await context.add_init_script(INIT_SCRIPT)
                page = await context.new_page()
                await page.goto(url)
                pages.append(page)
            online = "window.__lanCall?.link === 'online'"
            await wait_all(pages, online, 15)

            back_delays: list[float] = []
            for run in range(1, runs + 1):
                await server.stop()
                await wait_all(pages, "window.__lanCall.link !== 'online'", 10)
                await asyncio.sleep(down)
                back = await server.start()
                await wait_all(pages, online, 20)
                delays = [first_after(await links(p), "online", back) - back for p in pages]
                back_delays += delays
                print(
                    f"run {run}: server back -> online per tab (ms): " + " ".join(f"{d:.0f}" for d in delays)
                )
            summary(f"server down {down:g} s, back -> every tab online", back_delays)

            if freeze > 0:
                await asyncio.sleep(1)
                frozen = time.time() * 1000
                server.signal(signal.SIGSTOP)
                await wait_all(pages, "window.__lanCall.link !== 'online'", freeze + 5)
                noticed = [first_after(await links(p), "online", frozen, negate=True) - frozen for p in pages]
                remaining = freeze - (time.time() * 1000 - frozen) / 1000
                if remaining > 0:
                    await asyncio.sleep(remaining)
                resumed = time.time() * 1000
                server.signal(signal.SIGCONT)
                await wait_all(pages, online, 30)
                again = [first_after(await links(p), "online", resumed) - resumed for p in pages]
                summary("server frozen (SIGSTOP), freeze -> tab says it is reconnecting", noticed)
                summary(f"after {freeze:g} s frozen, SIGCONT -> every tab online", again)
            await browser.close()
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tabs", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--down", type=float, default=8.0)
    parser.add_argument("--freeze", type=float, default=15.0)
    args = parser.parse_args()
    asyncio.run(bench(args.tabs, args.runs, args.down, args.freeze))


if __name__ == "__main__":
    main()
