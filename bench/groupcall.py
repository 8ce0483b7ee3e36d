"""Group-call benchmark (issue 11): a mesh of N = 3..6 members, of which one or two are
Chromium tabs (the browser client, fake camera and microphone) and the rest Python peers
(lancall_peer/peer.py, small synthetic video), all on this machine.

For each N it builds the call the way people do: the first Python peer calls the first
tab (a 1:1 call the tab accepts), then invites the others one at a time (each tab
accepts on its incoming panel; each Python peer joins at once), waiting after every
join until every member decodes video from every other. It measures:

  * join -> full mesh: from the last accept (the joiner's `join`, or its tap on Accept)
    to every member decoding video from every other member (the last first frame of
    the new joiner's links, both directions). Tabs time each link's first decoded frame
    in the page (getStats every 25 ms, only on links still waiting for one); Python
    peers when aiortc hands the first frame over; both on the wall clock;
  * upstream kbps per member over a window once the mesh is complete: a tab's
    outbound-rtp bytesSent (video + audio, all links), a Python peer's bytes sent on its
    links' transports (video + RTCP + data channel);
  * CPU per tab (its renderer process, from /proc), the rest of Chromium (browser, GPU,
    network and utility processes together), this process (all Python peers) and the
    server, over the same window, in % of one core.

Usage: .venv/bin/python bench/groupcall.py [--sizes 3,4,5,6] [--tabs 2] [--window 5] [--repeat 3]
                                           [--py-size 160x120] [--py-fps 15] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support and server, shared with the tests

from playwright.async_api import Browser, BrowserContext, Page, async_playwright  # noqa: E402

from lancall_peer.peer import PythonPeer  # noqa: E402
from tests.support import chromium  # noqa: E402
from tests.support.benchproc import cpu_seconds_of, machine_busy_seconds, start_server, stop_server  # noqa: E402
from tests.support.net import free_port  # noqa: E402

TIMEOUT = 45.0  # seconds one join may take to reach a full mesh before the run gives up

# Runs in every tab before the app: remembers every RTCPeerConnection the page makes,
# timestamps each one's first decoded video frame, and clicks Accept on an incoming call
# or invitation at once (the benchmark measures the app, not a person's reaction time).
PROBE_JS = """
(() => {
  const wallNow = () => performance.timeOrigin + performance.now();
  const pcs = [];
  const firstFrame = new Map();
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); pcs.push(this); }
  };
  const open = () => pcs.filter((pc) => pc.connectionState !== 'closed');
  const framesOf = async (pc) => {
    let frames = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
    });
    return frames;
  };
  setInterval(async () => {
    for (const pc of open()) {
      if (firstFrame.has(pc)) continue;
      try { if (await framesOf(pc) > 0) firstFrame.set(pc, wallNow()); } catch { /* closed meanwhile */ }
    }
  }, 25);
  window.__bench = {
    accept: 0,
    // Links that decode video now, and the latest of their first frames.
    decoding: () => {
      const done = open().filter((pc) => firstFrame.has(pc));
      return {links: done.length, last: Math.max(0, ...done.map((pc) => firstFrame.get(pc)))};
    },
    sent: async () => {
      let bytes = 0;
      for (const pc of open()) {
        try {
          (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp') bytes += s.bytesSent || 0; });
        } catch { /* closed meanwhile */ }
      }
      return bytes;
    },
  };
  addEventListener('DOMContentLoaded', () => {
    const panel = document.getElementById('incoming');
    new MutationObserver(() => {
      if (!panel.hidden) {
        window.__bench.accept = wallNow();
        document.getElementById('accept').click();
      }
    }).observe(panel, {attributes: true, attributeFilter: ['hidden']});
  });
})();
"""


class TimedPeer(PythonPeer):
    """A Python peer that remembers when it accepted an invitation (sent `join`)."""

    joined_at = 0.0

    async def join(self, call_id: str) -> None:
        self.joined_at = time.time()
        await super().join(call_id)


@dataclass
class Tab:
    name: str
    context: BrowserContext
    page: Page
    id: str = ""


@dataclass
class Round:
    size: int
    join_ms: float = 0.0  # the median over the repeats
    join_runs_ms: list[float] = field(default_factory=list)  # the last join, once per repeat
    joins_ms: list[float] = field(default_factory=list)  # every join of the round, in order
    tab_kbps: list[float] = field(default_factory=list)
    py_kbps: list[float] = field(default_factory=list)
    tab_cpu: list[float] = field(default_factory=list)  # % of one core, busiest renderer first
    chromium_other_cpu: float = 0.0
    python_cpu: float = 0.0
    server_cpu: float = 0.0
    machine_busy: float = 0.0  # % of all cores


# --- processes ------------------------------------------------------------------------------


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found.extend(children)
        frontier.extend(children)
    return found


def chromium_processes() -> dict[int, str]:
    """Chromium's processes under this one: pid -> its --type (browser for the main one)."""
    result = {}
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):
            # Child processes rewrite their command line into one space-separated string.
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "chrom" not in Path(cmdline.split(" ", 1)[0]).name:
                continue
            kind = re.search(r"--type=(\S+)", cmdline)
            result[pid] = kind.group(1) if kind else "browser"
    return result


def cpu_snapshot(pids: list[int]) -> dict[int, float]:
    snapshot = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            snapshot[pid] = cpu_seconds_of(pid)
    return snapshot


# --- members --------------------------------------------------------------------------------


async def open_tab(browser: Browser, url: str, name: str) -> Tab:
    context = await browser.new_context(ignore_https_errors=True)
    await context.add_init_script(f"localStorage.setItem('lanCall.name', {name!r});" + PROBE_JS)
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function(
        "() => window.__lanCall?.link === 'online' && window.__lanCall.media === 'ready'", polling=50
    )
    tab = Tab(name, context, page)
    tab.id = await page.evaluate("() => window.__lanCall.id")
    return tab


async def tab_members(tab: Tab) -> list[str]:
    call = await tab.page.evaluate("() => window.__lanCall.call")
    return list(call["members"]) if call else []


async def full_mesh(tabs: list[Tab], peers: list[TimedPeer], size: int) -> float:
    """Wait until every member has a call of `size` members and decodes video on all its
    links; return the wall time of the latest first frame anywhere."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        last = 0.0
        done = True
        for tab in tabs:
            decoding = await tab.page.evaluate("() => window.__bench.decoding()")
            members = await tab_members(tab)
            done = done and len(members) == size and decoding["links"] == size - 1
            last = max(last, decoding["last"] / 1000)
        for peer in peers:
            links = [peer.calls.get(m) for m in peer.members if m != peer.id]
            firsts = [c.first_video_at for c in links if c is not None]
            done = done and len(peer.members) == size and len(firsts) == size - 1 and None not in firsts
            last = max([last, *(t for t in firsts if t is not None)])
        if done:
            return last
        if time.monotonic() > deadline:
            state = {t.name: await t.page.evaluate("() => window.__bench.decoding()") for t in tabs}
            frames = {p.name: p.frames_from_members() for p in peers}
            raise TimeoutError(f"no full mesh of {size} after {TIMEOUT:g} s: tabs {state}, peers {frames}")
        await asyncio.sleep(0.05)


async def bytes_sent(tabs: list[Tab], peers: list[TimedPeer]) -> tuple[list[int], list[int]]:
    tab_bytes = [await t.page.evaluate("() => window.__bench.sent()") for t in tabs]
    py_bytes = [sum(sent for _, sent in (await p.traffic_by_member()).values()) for p in peers]
    return tab_bytes, py_bytes


@contextlib.asynccontextmanager
async def members(
    browser: Browser, url: str, ca: Path, tab_count: int, peer_count: int, py_video: dict[str, Any]
) -> AsyncIterator[tuple[list[Tab], list[TimedPeer]]]:
    context = ssl.create_default_context(cafile=str(ca))
    tabs: list[Tab] = []
    async with contextlib.AsyncExitStack() as stack:
        for i in range(tab_count):
            tabs.append(await open_tab(browser, url, f"Tab {i + 1}"))
        peers: list[TimedPeer] = []
        for i in range(peer_count):
            peer = TimedPeer(url, f"Py {i + 1}", ssl_context=context, wait_timeout=TIMEOUT, **py_video)
            await stack.enter_async_context(peer)
            peers.append(peer)
        try:
            yield tabs, peers
        finally:
            for tab in tabs:
                await tab.context.close()


async def one_round(
    browser: Browser,
    url: str,
    ca: Path,
    size: int,
    tab_count: int,
    window: float,
    py_video: dict[str, Any],
    server_pid: int,
) -> Round:
    result = Round(size)
    async with members(browser, url, ca, tab_count, size - tab_count, py_video) as (tabs, peers):
        host = peers[0]
        # The order people arrive: the first tab is called, then the other tab, then the
        # Python peers, so the last to accept is a Python peer whenever there is one.
        await host.call(await host.wait_for_peer(tabs[0].name))
        await full_mesh(tabs[:1], peers[:1], 2)
        joined_tabs, joined_peers = tabs[:1], peers[:1]
        joiners: list[Tab | TimedPeer] = [*tabs[1:], *peers[1:]]
        for joiner in joiners:
            if isinstance(joiner, Tab):
                joined_tabs = [*joined_tabs, joiner]
                await host.invite(joiner.id)
            else:
                joined_peers = [*joined_peers, joiner]
                await host.invite(joiner.id or "")
            count = len(joined_tabs) + len(joined_peers)
            last_frame = await full_mesh(joined_tabs, joined_peers, count)
            if isinstance(joiner, Tab):
                accepted = await joiner.page.evaluate("() => window.__bench.accept") / 1000
            else:
                accepted = joiner.joined_at
            result.joins_ms.append((last_frame - accepted) * 1000)
        result.join_ms = result.joins_ms[-1]

        await asyncio.sleep(1.0)  # past the first second's ramp-up of the encoders
        procs = chromium_processes()
        watched = [*procs, os.getpid(), server_pid]
        cpu_before, busy_before, cpu_began = cpu_snapshot(watched), machine_busy_seconds(), time.monotonic()
        sent_before, began = await bytes_sent(tabs, peers), time.monotonic()
        await asyncio.sleep(window)
        sent_after, elapsed = await bytes_sent(tabs, peers), time.monotonic() - began
        cpu_after, busy_after = cpu_snapshot(watched), machine_busy_seconds()
        cpu_elapsed = time.monotonic() - cpu_began

    def kbps(before: int, after: int) -> float:
        return (after - before) * 8 / elapsed / 1000

    result.tab_kbps = [kbps(b, a) for b, a in zip(sent_before[0], sent_after[0], strict=True)]
    result.py_kbps = [kbps(b, a) for b, a in zip(sent_before[1], sent_after[1], strict=True)]
    used = {
        pid: 100 * (cpu_after[pid] - cpu_before[pid]) / cpu_elapsed for pid in cpu_after if pid in cpu_before
    }
    renderers = sorted((used[p] for p in procs if procs[p] == "renderer" and p in used), reverse=True)
    result.tab_cpu = renderers[:tab_count]
    result.chromium_other_cpu = sum(used.get(p, 0.0) for p in procs) - sum(result.tab_cpu)
    result.python_cpu = used.get(os.getpid(), 0.0)
    result.server_cpu = used.get(server_pid, 0.0)
    result.machine_busy = 100 * (busy_after - busy_before) / cpu_elapsed / (os.cpu_count() or 1)
    return result


async def run(
    sizes: list[int], tab_count: int, window: float, py_video: dict[str, Any], repeat: int
) -> dict[str, Any]:
    rounds = []
    with tempfile.TemporaryDirectory(prefix="lan-call-bench-") as tmp:
        port = free_port()
        certs = Path(tmp) / "certs"
        server = start_server(port, certs, Path(tmp) / "server.log", LOG_LEVEL="WARNING", MAX_CALL_SIZE="6")
        url = f"https://localhost:{port}/"
        try:
            async with async_playwright() as p:
                browser = await chromium.launch(p)
                version = browser.version
                ca = certs / "ca.pem"
                for size in sizes:
                    runs = [
                        await one_round(browser, url, ca, size, tab_count, window, py_video, server.pid)
                        for _ in range(repeat)
                    ]
                    last = runs[-1]  # kbps and CPU from the last; the join time over all
                    last.join_runs_ms = [r.join_ms for r in runs]
                    last.join_ms = statistics.median(last.join_runs_ms)
                    rounds.append(last)
                    print(f"N={size}: done", file=sys.stderr)
                await browser.close()
        finally:
            stop_server(server)
    return {
        "browser": f"Chromium {version}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "tabs": tab_count,
        "window_s": window,
        "repeat": repeat,
        "python_video": "{}x{} at {:g} fps".format(*py_video["video_size"], py_video["video_fps"]),
        "rounds": [vars(r) for r in rounds],
    }


def report(r: dict[str, Any]) -> str:
    tabs = r["tabs"]
    lines = [
        f"LAN Call group-call benchmark — {r['browser']}, loopback, {r['machine']}",
        f"{tabs} Chromium tab(s) (fake camera) + Python peers ({r['python_video']}); "
        f"figures over {r['window_s']:g} s once the mesh is complete; CPU in % of one core;",
        f"last join: median of {r['repeat']} run(s) [min-max]; earlier joins, kbps and CPU: the last run",
        "",
        " N | last join -> full mesh    | earlier joins (ms)      | up kbps: tabs     | py (mean) | "
        "CPU: tabs     | rest of Chromium | py peers | server | machine",
    ]
    for x in r["rounds"]:
        earlier = ", ".join(f"{v:.0f}" for v in x["joins_ms"][:-1]) or "-"
        spread = f"{min(x['join_runs_ms']):.0f}-{max(x['join_runs_ms']):.0f}"
        tab_kbps = " / ".join(f"{v:.0f}" for v in x["tab_kbps"])
        py = x["py_kbps"]
        py_mean = sum(py) / len(py) if py else 0.0
        tab_cpu = " / ".join(f"{v:.0f} %" for v in x["tab_cpu"])
        lines.append(
            f"{x['size']:>2} | {x['join_ms']:>5.0f} ms [{spread:<13}] | {earlier:<23} | "
            f"{tab_kbps:<17} | {py_mean:>9.0f} | "
            f"{tab_cpu:<13} | {x['chromium_other_cpu']:>14.0f} % | {x['python_cpu']:>6.0f} % | "
            f"{x['server_cpu']:>4.0f} % | {x['machine_busy']:>5.0f} %"
        )
    lines.append("")
    lines.append(
        "Tab CPU is per renderer process (busiest first; a tab's page, its WebRTC encoders and "
        "decoders); 'machine' is all cores busy, so near 100 % means the figures are CPU-bound."
    )
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="3,4,5,6", help="call sizes to measure (3 to 6)")
    parser.add_argument("--tabs", type=int, choices=(1, 2), default=2, help="Chromium tabs among the members")
    parser.add_argument("--window", type=float, default=5.0, help="seconds for kbps and CPU")
    parser.add_argument("--py-size", type=_size, default=(160, 120), help="Python peers' video, WxH")
    parser.add_argument("--py-fps", type=float, default=15.0, help="Python peers' frame rate")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (the join time's median)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(not 3 <= s <= 6 for s in sizes) or any(s - args.tabs < 1 for s in sizes):
        parser.error("sizes are 3 to 6, with at least one Python peer besides the tabs")
    py_video = {"video_size": args.py_size, "video_fps": args.py_fps}
    result = asyncio.run(run(sizes, args.tabs, args.window, py_video, max(1, args.repeat)))
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
