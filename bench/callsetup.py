"""Call setup benchmark for the browser client (issue 5).

Starts `python -m server` on a free loopback port with throwaway certificates, opens two
users in one headless Chromium (fake camera and microphone), and measures:

  * call setup: from the caller's tap on a person to the first decoded remote video
    frame on BOTH sides (the later of the two), over N calls (default 20). The callee
    answers the moment the incoming-call panel appears (an in-page observer clicks
    Accept), so the figure is the app and network path, without human reaction time;
  * page transfer size: HTML + JS + CSS of one page load, uncompressed;
  * navigation -> "people listed": from navigation start to the first person shown,
    for a fresh visitor (empty cache) and for a reload (cached, versioned assets), in a
    phone-sized page (360x740); and what a fresh visitor fetched before that moment:
    requests and bytes on the wire (Resource Timing's transferSize: compressed bodies
    plus response headers).

`--server-dir DIR` (repeatable) measures other checkouts in the same run, one after the
other and then this one (e.g. a worktree at the commit before a change, for an A/B).
The machine's load average is printed before and after, so a noisy run shows.

Usage: .venv/bin/python bench/callsetup.py [--calls 20] [--loads 10] [--server-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support, shared with the tests

from playwright.async_api import Browser, BrowserContext, Page, async_playwright  # noqa: E402

from tests.support import chromium  # noqa: E402
from tests.support.net import LOOPBACK, free_port  # noqa: E402
from tests.support.polling import wait_healthy  # noqa: E402
from tests.support.servers import SERVER_ARGV, server_env  # noqa: E402

# Runs in every page before the app: timestamps on the shared wall clock
# (performance.timeOrigin + now), so two pages' times can be compared.
PROBE_JS = """
window.__bench = {tap: 0, frame: 0};
const STAGES = ['offer-sent', 'offer-received', 'answer-sent', 'answer-received', 'connected'];
// The call's stages, as marked by public/calls/peerlink.js, on the shared wall clock.
window.__benchStages = () => Object.fromEntries(STAGES.map((stage) => {
  const mark = performance.getEntriesByName(`lan-call:${stage}`).at(-1);
  return [stage, mark ? performance.timeOrigin + mark.startTime : null];
}));
const wallNow = () => performance.timeOrigin + performance.now();
document.addEventListener('click', (event) => {
  if (event.target.closest('[data-testid=person]')) window.__bench.tap = wallNow();
}, true);
window.__benchArm = () => {
  window.__bench.frame = 0;
  for (const stage of STAGES) performance.clearMarks(`lan-call:${stage}`);
  const video = document.getElementById('remote-video');
  video.requestVideoFrameCallback((now) => { window.__bench.frame = performance.timeOrigin + now; });
};
// Answer at once: the benchmark measures the app, not a person's reaction time.
addEventListener('DOMContentLoaded', () => {
  const panel = document.getElementById('incoming');
  new MutationObserver(() => {
    if (!panel.hidden && window.__benchAutoAnswer) document.getElementById('accept').click();
  }).observe(panel, {attributes: true, attributeFilter: ['hidden']});
});
"""


@contextlib.asynccontextmanager
async def running_server(workdir: Path, server_dir: Path = ROOT) -> AsyncIterator[str]:
    port = free_port()
    env = server_env(
        HOST=LOOPBACK, PORT=str(port), CERTS_DIR=str(workdir / "certs"), STATE_FILE="", LOG_LEVEL="WARNING"
    )
    process = await asyncio.create_subprocess_exec(
        *SERVER_ARGV, cwd=server_dir, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    url = f"https://localhost:{port}/"
    try:
        try:
            await wait_healthy(url, workdir / "certs" / "ca.pem", within=20, process=process)
        except (RuntimeError, TimeoutError) as error:
            raise SystemExit(str(error)) from None
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()


async def open_user(browser: Browser, url: str, name: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(ignore_https_errors=True)
    await context.add_init_script(
        f"if (!localStorage.getItem('lanCall.name')) localStorage.setItem('lanCall.name', {name!r});"
        + PROBE_JS
    )
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function(
        "() => window.__lanCall?.link === 'online' && window.__lanCall.media === 'ready'", polling=20
    )
    return context, page


async def page_weight(browser: Browser, url: str) -> dict[str, int]:
    """Uncompressed bytes of one fresh page load, by kind."""
    context = await browser.new_context(ignore_https_errors=True)
    sizes: dict[str, int] = {}
    bodies: list[Any] = []

    async def measure(response: Any) -> None:
        kind = response.request.resource_type
        try:
            body = await response.body()
        except Exception:  # a redirect or an aborted load has no body
            return
        sizes[kind] = sizes.get(kind, 0) + len(body)

    page = await context.new_page()
    page.on("response", lambda response: bodies.append(asyncio.ensure_future(measure(response))))
    await page.goto(url, wait_until="load")
    await page.wait_for_function("() => window.__lanCall?.link === 'online'", polling=20)
    await asyncio.gather(*bodies)
    await context.close()
    return sizes


# What the page fetched before the first person was listed: the document and every
# resource that started before the mark (a WebSocket is not a resource entry).
BEFORE_LIST_JS = """() => {
  const mark = performance.getEntriesByName('lan-call:first-person')[0].startTime;
  const nav = performance.getEntriesByType('navigation')[0];
  const early = performance.getEntriesByType('resource').filter((e) => e.startTime < mark);
  return {
    requests: 1 + early.length,
    bytes: nav.transferSize + early.reduce((sum, e) => sum + e.transferSize, 0),
    names: early.map((e) => new URL(e.name).pathname),
  };
}"""


async def people_listed_ms(
    browser: Browser, url: str, loads: int
) -> tuple[list[float], list[float], list[dict[str, Any]]]:
    """Navigation start -> first person rendered, fresh visitors and reloads, on a phone
    sized page; and what each fresh visitor fetched before it. Someone ("Host") is online
    already so there is a person to list."""
    host_context, _ = await open_user(browser, url, "Host")
    mark = "() => performance.getEntriesByName('lan-call:first-person')[0]?.startTime"
    fresh: list[float] = []
    reload: list[float] = []
    before: list[dict[str, Any]] = []
    try:
        for i in range(loads):
            phone = {"width": 360, "height": 740}
            context = await browser.new_context(ignore_https_errors=True, viewport=phone)
            await context.add_init_script(f"localStorage.setItem('lanCall.name', 'Visitor {i}')")
            page = await context.new_page()
            await page.goto(url)
            fresh.append(await (await page.wait_for_function(mark, polling=20)).json_value())
            before.append(await page.evaluate(BEFORE_LIST_JS))
            await page.reload()
            reload.append(await (await page.wait_for_function(mark, polling=20)).json_value())
            await context.close()
    finally:
        await host_context.close()
    return fresh, reload, before


async def one_call(caller: Page, callee: Page) -> dict[str, float]:
    for page in (caller, callee):
        await page.evaluate("() => window.__benchArm()")
    await caller.get_by_test_id("person").filter(has_text="Callee").click()
    times = []
    for page in (caller, callee):
        handle = await page.wait_for_function(
            "() => window.__bench.frame && window.__bench", polling=20, timeout=15000
        )
        times.append(await handle.json_value())
    tap = times[0]["tap"]
    result = {
        "caller_ms": times[0]["frame"] - tap,
        "callee_ms": times[1]["frame"] - tap,
    }
    mine = await caller.evaluate("() => window.__benchStages()")
    theirs = await callee.evaluate("() => window.__benchStages()")
    if all(mine[k] for k in ("offer-sent", "answer-received", "connected")) and all(
        theirs[k] for k in ("offer-received", "answer-sent")
    ):
        result |= {
            "tap_to_offer_ms": mine["offer-sent"] - tap,
            "offer_relay_ms": theirs["offer-received"] - mine["offer-sent"],
            "callee_answers_ms": theirs["answer-sent"] - theirs["offer-received"],
            "answer_relay_ms": mine["answer-received"] - theirs["answer-sent"],
            "ice_dtls_ms": mine["connected"] - mine["answer-received"],
            "connected_to_frame_ms": times[0]["frame"] - mine["connected"],
        }
    result["both_ms"] = max(result["caller_ms"], result["callee_ms"])
    await caller.get_by_test_id("hang-up").click()
    for page in (caller, callee):
        await page.wait_for_function("() => window.__lanCall.callState === null", polling=20)
    await asyncio.sleep(0.3)  # let both peer connections close before the next call
    return result


STAGE_KEYS = (
    "tap_to_offer_ms",
    "offer_relay_ms",
    "callee_answers_ms",
    "answer_relay_ms",
    "ice_dtls_ms",
    "connected_to_frame_ms",
)


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


async def run(calls: int, loads: int, server_dir: Path = ROOT) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lan-call-bench-") as tmp:
        async with running_server(Path(tmp), server_dir) as url, async_playwright() as p:
            browser = await chromium.launch(p)
            weight = await page_weight(browser, url)
            fresh, reloaded, before = await people_listed_ms(browser, url, loads)
            caller_context, caller = await open_user(browser, url, "Caller")
            callee_context, callee = await open_user(browser, url, "Callee")
            await callee.evaluate("() => { window.__benchAutoAnswer = true; }")
            await caller.get_by_test_id("person").filter(has_text="Callee").wait_for()
            await one_call(caller, callee)  # warm-up: codecs, first getStats, JIT
            results = [await one_call(caller, callee) for _ in range(calls)]
            version = browser.version
            await caller_context.close()
            await callee_context.close()
            await browser.close()
    both = [r["both_ms"] for r in results]
    code = weight.get("document", 0) + weight.get("script", 0) + weight.get("stylesheet", 0)
    return {
        "server_dir": str(server_dir),
        "browser": f"Chromium {version}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "calls": calls,
        "call_setup_ms": {
            "median": statistics.median(both),
            "p90": p90(both),
            "min": min(both),
            "max": max(both),
            "caller_median": statistics.median(r["caller_ms"] for r in results),
            "callee_median": statistics.median(r["callee_ms"] for r in results),
        },
        "stages_median_ms": {
            stage: statistics.median(r[stage] for r in results if stage in r)
            for stage in STAGE_KEYS
            if any(stage in r for r in results)
        },
        "page_bytes": {
            "html": weight.get("document", 0),
            "js": weight.get("script", 0),
            "css": weight.get("stylesheet", 0),
            "html_js_css": code,
            "other": sum(v for k, v in weight.items() if k not in ("document", "script", "stylesheet")),
        },
        "people_listed_ms": {
            "fresh_median": statistics.median(fresh),
            "fresh_p90": p90(fresh),
            "reload_median": statistics.median(reloaded),
            "reload_p90": p90(reloaded),
            "loads": loads,
        },
        "before_list": {
            "requests_median": statistics.median(b["requests"] for b in before),
            "bytes_median": statistics.median(b["bytes"] for b in before),
            "names": before[0]["names"] if before else [],
        },
    }


def report(r: dict[str, Any]) -> str:
    s, b, n, f = r["call_setup_ms"], r["page_bytes"], r["people_listed_ms"], r["before_list"]
    stages = r["stages_median_ms"]

    def kb(value: int) -> str:
        return f"{value / 1000:.1f} KB"

    return "\n".join(
        [
            f"LAN Call client benchmark — {r['browser']}, loopback, {r['machine']}",
            f"server from {r['server_dir']}",
            f"call setup, tap -> first remote frame on both sides ({r['calls']} calls):",
            f"  median {s['median']:.0f} ms, p90 {s['p90']:.0f} ms (min {s['min']:.0f}, max {s['max']:.0f});"
            f" caller side median {s['caller_median']:.0f} ms, callee side {s['callee_median']:.0f} ms",
            "  where it goes (medians, ms): "
            + ", ".join(f"{k.removesuffix('_ms').replace('_', ' ')} {v:.0f}" for k, v in stages.items()),
            f"page transfer (uncompressed): {kb(b['html_js_css'])} HTML+JS+CSS"
            f" (HTML {kb(b['html'])}, JS {kb(b['js'])}, CSS {kb(b['css'])});"
            f" icons and QR code {kb(b['other'])}",
            f"navigation -> people listed ({n['loads']} loads):"
            f" fresh visitor median {n['fresh_median']:.0f} ms (p90 {n['fresh_p90']:.0f}),"
            f" reload median {n['reload_median']:.0f} ms (p90 {n['reload_p90']:.0f})",
            f"fetched before the list showed (fresh visitor, 360x740): {f['requests_median']:.0f} requests,"
            f" {kb(int(f['bytes_median']))} on the wire ({', '.join(f['names'])})",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--server-dir", type=Path, action="append", default=[], help="another checkout to measure first (A/B)"
    )
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results = [asyncio.run(run(args.calls, args.loads, d.resolve())) for d in [*args.server_dir, ROOT]]
    for result in results:
        print(json.dumps(result, indent=2) if args.json else report(result), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
