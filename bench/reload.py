"""Live-reload latency (issue 4): time from writing a file to the page's `load` event,
in two open tabs, over 10 edits. Target: median <= 500 ms.

    .venv/bin/python bench/reload.py [--edits 10] [--tabs 2] [--file public/app.css]

The server (RELOAD=assets, the real app) runs in its own process on copies of public/
and templates/, so the real tree is never edited. Chromium (CHROMIUM, default
/usr/bin/chromium) opens the page in each tab. Every edit changes one file's content;
the script then waits until every tab has fired `load` on the reloaded page and is
connected again with the new version before the next edit.

Times come from the browser's own clock (performance.timeOrigin + loadEventStart)
against the wall-clock time of the write, so Playwright's round trips are not counted.
Printed per edit: the slowest tab (what "every open tab reloads" means), and the split
into write -> `ready` arrives in the old page (watcher batching + hashing + push) and
`ready` -> `load` of the new page (navigation).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from playwright.async_api import Page, async_playwright  # noqa: E402

from server.app import create_app  # noqa: E402
from server.appkeys import Site  # noqa: E402
from server.config import PROJECT_ROOT, ReloadMode, Settings  # noqa: E402
from server.netinfo import certificate_identities  # noqa: E402
from server.tls import ensure_local_certificates, server_context  # noqa: E402
from tests.support import chromium  # noqa: E402

# Runs before the page's own scripts on every navigation: notes the version of each
# `ready` the page receives, and when (browser wall clock) a ready with a new version
# arrived, kept in sessionStorage so the reloaded page can report it.
INIT_SCRIPT = """
(() => {
  const Native = window.WebSocket;
  window.__benchVersion = null;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch { return; }
        if (!message || message.type !== 'ready') return;
        if (window.__benchVersion !== null && message.version !== window.__benchVersion) {
          sessionStorage.setItem('benchReadyAt', String(performance.timeOrigin + performance.now()));
        }
        window.__benchVersion = message.version;
      });
    }
  };
})();
"""

READY_TIME = "Number(sessionStorage.getItem('benchReadyAt'))"
LOAD_TIME = "performance.timeOrigin + performance.getEntriesByType('navigation')[0].loadEventStart"


async def serve(public: Path, templates: Path, certs: Path) -> None:
    """`--serve`: the real app with RELOAD=assets on the copies; prints its port."""
    settings = Settings(
        reload=ReloadMode.ASSETS,
        echo=False,
        public_dir=public,
        templates_dir=templates,
        certs_dir=certs,
        state_file=None,
    )
    files = ensure_local_certificates(certs, certificate_identities())
    app = create_app(settings, Site(["https://localhost/"], files.ca))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    context = server_context(files.cert, files.key, from_env=False)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context, reuse_address=True)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


class ServerProcess:
    """The server in its own process, as in real use (no GIL shared with Playwright)."""

    def __init__(self, public: Path, templates: Path, certs: Path) -> None:
        self.args = ["--serve", str(public), str(templates), str(certs)]
        self.certs = certs
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *self.args, stdout=asyncio.subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if not line.startswith(b"PORT "):
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(line.split()[1])
        context = ssl.create_default_context(cafile=str(self.certs / "ca.pem"))
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))

    async def version(self) -> str:
        assert self.http is not None
        async with self.http.get(f"https://localhost:{self.port}/healthz") as resp:
            return str((await resp.json())["assets"])

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await self.proc.wait()


def pick_file(public: Path, templates: Path, given: str | None) -> Path:
    if given:
        relative = Path(given)
        base = public if relative.parts[0] == "public" else templates
        return base / Path(*relative.parts[1:])
    stylesheets = sorted(p for p in public.rglob("*.css") if p.name != "trust.css")
    return stylesheets[0] if stylesheets else templates / "index.html"


def edit(path: Path, n: int) -> None:
    """Change the content (a comment), keeping the file valid CSS/HTML/JS."""
    text = path.read_text()
    marker = "/* bench-edit */" if path.suffix in (".css", ".js") else "<!-- bench-edit -->"
    base = text.split(marker)[0].rstrip("\n")
    comment = f"/* bench-edit */ /* {n} */" if "/*" in marker else f"<!-- bench-edit --><!-- {n} -->"
    path.write_text(f"{base}\n{comment}\n")


async def wait_connected(pages: list[Page], version: str) -> None:
    for page in pages:
        await page.wait_for_function("v => window.__benchVersion === v", arg=version, timeout=10_000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


async def bench(edits: int, tabs: int, file_arg: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        work = Path(tmp)
        public, templates = work / "public", work / "templates"
        shutil.copytree(PROJECT_ROOT / "public", public)
        shutil.copytree(PROJECT_ROOT / "templates", templates)
        target = pick_file(public, templates, file_arg)
        server = ServerProcess(public, templates, work / "certs")
        await server.start()
        url = f"https://localhost:{server.port}/"
        print(f"server {url}  editing {target.relative_to(work)}  tabs={tabs} edits={edits}")
        try:
            async with async_playwright() as pw:
                browser = await chromium.launch(pw)
                context = await browser.new_context(ignore_https_errors=True)
                await context.add_init_script(INIT_SCRIPT)
                pages = [await context.new_page() for _ in range(tabs)]
                for page in pages:
                    await page.goto(url, wait_until="load")
                await wait_connected(pages, await server.version())

                slowest: list[float] = []
                to_ready: list[float] = []
                to_load: list[float] = []
                for n in range(1, edits + 1):
                    before = await server.version()
                    for page in pages:
                        await page.evaluate("sessionStorage.removeItem('benchReadyAt')")
                    loads = [asyncio.ensure_future(p.wait_for_event("load", timeout=10_000)) for p in pages]
                    written = time.time() * 1000
                    edit(target, n)
                    await asyncio.gather(*loads)
                    per_tab = []
                    for page in pages:
                        loaded = float(await page.evaluate(LOAD_TIME))
                        ready_at = float(await page.evaluate(READY_TIME))
                        assert ready_at > 0, "the reloaded page did not see the new version's ready"
                        per_tab.append(loaded - written)
                        to_ready.append(ready_at - written)
                        to_load.append(loaded - ready_at)
                    slowest.append(max(per_tab))
                    version = await server.version()
                    assert version != before, "the edit did not change the version"
                    await wait_connected(pages, version)
                    tabs_text = " ".join(f"{t:6.1f}" for t in per_tab)
                    print(f"edit {n:2d}: slowest tab {max(per_tab):6.1f} ms  (tabs: {tabs_text})")
                await browser.close()
        finally:
            await server.stop()

    def summary(name: str, values: list[float]) -> str:
        return (
            f"{name}: median {statistics.median(values):6.1f} ms  p90 {percentile(values, 0.9):6.1f} ms"
            f"  min {min(values):6.1f}  max {max(values):6.1f}"
        )

    print()
    print(summary("write -> load, slowest of the tabs", slowest))
    print(summary("write -> ready in old page (per tab)", to_ready))
    print(summary("ready -> load of new page (per tab)", to_load))
    target_ok = statistics.median(slowest) <= 500
    print(f"target median <= 500 ms: {'met' if target_ok else 'MISSED'}")
    return 0 if target_ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--tabs", type=int, default=2)
    parser.add_argument("--file", help="file to edit, e.g. public/app.css (default: first stylesheet)")
    parser.add_argument("--serve", nargs=3, metavar=("PUBLIC", "TEMPLATES", "CERTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(*(Path(p) for p in args.serve)))
        return 0
    return asyncio.run(bench(args.edits, args.tabs, args.file))


if __name__ == "__main__":
    sys.exit(main())
