"""File transfer benchmark (issue 12): the app's file transfer between two Chromium tabs
against a bare two-peer RTCDataChannel script in the same run, and the receiver's memory
as the file grows.

Starts `python -m server` on loopback and two headless Chromium browsers (one per person,
so each side's processes can be measured apart), both with the app open. Then:

  * baseline: a bare script in the same two tabs - one RTCPeerConnection pair (SDP passed
    by this script), one ordered reliable channel, 64 KiB messages, flow control by
    bufferedAmountLowThreshold (send while bufferedAmount <= 4 MiB, resume at 1 MiB) -
    sends SIZE bytes; time from the first send to the last byte received;
  * the app: Alice sends a SIZE-byte file to Bob with `files.send` (public/data/files.js), Bob
    accepts at once; time from Bob's accept to Bob's "done" (every byte written to the
    origin private file system and the whole file's SHA-256 checked on both sides);
  * receiver memory during each app transfer, sampled every 250 ms: Bob's page JS heap
    (CDP Runtime.getHeapUsage), the RSS of Bob's browser renderers, and of Bob's whole
    browser (renderers, GPU, network and storage services), with a persistent profile
    (an incognito context would keep the origin private file system in memory).

Each size runs in rounds (bare, app, and with --before DIR the app served from another
checkout, in the same browsers), and medians are reported, with the CPU seconds both
browsers spent per 100 MiB by process, and where the app's time goes.

Usage: .venv/bin/python bench/filetransfer.py [--size-mb 200] [--small-mb 64] [--rounds 3]
       [--before DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support, shared with the tests

from playwright.async_api import BrowserContext, Page, async_playwright  # noqa: E402

from tests.support import chromium  # noqa: E402
from tests.support.benchproc import start_server, stop_server  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.polling import wait_healthy  # noqa: E402

MiB = 1024 * 1024

# The bare script: both ends in the two pages, SDP and candidates passed by Python
# (non-trickle: wait for gathering to complete).
BARE_JS = """
async ([role, remote]) => {
  const w = window;
  if (role === 'offer') {
    w.__bare = { pc: new RTCPeerConnection() };
    w.__bare.dc = w.__bare.pc.createDataChannel('bare', { ordered: true });
    w.__bare.dc.binaryType = 'arraybuffer';
    await w.__bare.pc.setLocalDescription(await w.__bare.pc.createOffer());
  } else if (role === 'answer') {
    w.__bare = { pc: new RTCPeerConnection(), received: 0 };
    w.__bare.pc.ondatachannel = ({ channel }) => {
      channel.binaryType = 'arraybuffer';
      w.__bare.dc = channel;
      channel.onmessage = (event) => {
        w.__bare.received += event.data.byteLength;
        const now = performance.timeOrigin + performance.now();
        if (w.__bare.received >= w.__bare.expect) w.__bare.doneAt = now;
      };
    };
    await w.__bare.pc.setRemoteDescription(remote);
    await w.__bare.pc.setLocalDescription(await w.__bare.pc.createAnswer());
  } else {
    await w.__bare.pc.setRemoteDescription(remote);
    return null;
  }
  const pc = w.__bare.pc;
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((r) => {
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r());
    });
  }
  return { type: pc.localDescription.type, sdp: pc.localDescription.sdp };
}
"""

BARE_SEND_JS = """
async (size) => {
  const dc = window.__bare.dc;
  if (dc.readyState !== 'open') await new Promise((r) => dc.addEventListener('open', r, { once: true }));
  const chunk = crypto.getRandomValues(new Uint8Array(65536));
  dc.bufferedAmountLowThreshold = 1024 * 1024;
  const startedAt = performance.timeOrigin + performance.now();
  let sent = 0;
  while (sent < size) {
    if (dc.bufferedAmount > 4 * 1024 * 1024) {
      await new Promise((r) => dc.addEventListener('bufferedamountlow', r, { once: true }));
      continue;
    }
    const n = Math.min(chunk.length, size - sent);
    dc.send(n === chunk.length ? chunk : chunk.subarray(0, n));
    sent += n;
  }
  return startedAt;
}
"""

# A file of `size` random-looking bytes in Alice's page (1 MiB of random data repeated),
# sent to Bob with the app; Bob's page accepts every offer at once and notes the times.
APP_ARM_JS = """
() => {
  const files = window.__lanCall.files;
  window.__bench = {};
  if (window.__benchArmed) return;
  window.__benchArmed = true;
  files.on('added', (entry) => {
    if (entry.direction !== 'in') return;
    window.__bench.acceptedAt = performance.timeOrigin + performance.now();
    files.accept(entry.id);
    entry.transfer.on('progress', ({ bytes, size }) => {
      const now = performance.timeOrigin + performance.now();
      if (bytes > 0 && !window.__bench.firstAt) window.__bench.firstAt = now;
      if (bytes >= size && !window.__bench.allAt) window.__bench.allAt = now;
    });
    entry.transfer.on('state', ({ to }) => {
      window.__bench.state = to;
      const now = performance.timeOrigin + performance.now();
      if (to === 'done' || to === 'failed') window.__bench.doneAt = now;
      if (to === 'failed') window.__bench.reason = entry.transfer.reason;
    });
  });
}
"""
DISMISS_ALL_JS = "() => { const f = window.__lanCall.files; for (const i of f.entries.keys()) f.dismiss(i); }"
APP_SEND_JS = """
([peerId, size]) => {
  const block = new Uint8Array(1024 * 1024);
  for (let at = 0; at < block.length; at += 65536) crypto.getRandomValues(block.subarray(at, at + 65536));
  const parts = [];
  for (let left = size; left > 0; left -= block.length) {
    parts.push(left >= block.length ? block : block.subarray(0, left));
  }
  window.__lanCall.files.send(peerId, [new File(parts, 'bench.bin', { type: 'application/octet-stream' })]);
}
"""


def descendants(root: int) -> list[int]:
    """`root` and every process below it (/proc walk)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def browser_pid(marker: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker.encode() in cmdline and not any(arg.startswith(b"--type=") for arg in cmdline):
                return int(entry.name)
    raise RuntimeError(f"no browser process with {marker}")


def rss_by_type(pids: list[int]) -> dict[str, float]:
    """RSS in MiB per Chromium process type (browser, renderer, gpu-process, utility...)."""
    sizes: dict[str, float] = {}
    for pid in pids:
        try:
            # Zygote children rewrite their argv into one space-separated string.
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
            kind = next((a[7:].decode() for a in args if a.startswith(b"--type=")), "browser")
            sub = next((a.split(b"=")[1].decode() for a in args if a.startswith(b"--utility-sub-type=")), "")
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        rss = next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
        key = f"{kind}:{sub.rsplit('.', 1)[-1]}" if sub else kind
        sizes[key] = sizes.get(key, 0) + rss / 1024
    return sizes


def process_kind(pid: int) -> str:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
    kind = next((a[7:].decode() for a in args if a.startswith(b"--type=")), "browser")
    sub = next((a.split(b"=")[1].decode() for a in args if a.startswith(b"--utility-sub-type=")), "")
    return f"{kind}:{sub.rsplit('.', 1)[-1]}" if sub else kind


def cpu_by_kind(roots: list[int]) -> dict[str, float]:
    """CPU seconds used so far (user + system, all threads) per side and process type,
    e.g. "sender renderer", over every process below each browser in `roots`."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for side, root in zip(("sender", "receiver"), roots, strict=True):
        for pid in descendants(root):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                key = f"{side} {process_kind(pid)}"
            except OSError:
                continue
            used[key] = used.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after if after[k] - before.get(k, 0.0) > 0.005}


def rss_mib(pids: list[int], renderers_only: bool) -> float:
    total = 0
    for pid in pids:
        try:
            if renderers_only and b"--type=renderer" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def open_app(context: BrowserContext, url: str, name: str) -> Page:
    await context.add_init_script(f"localStorage.setItem('lanCall.name', {name!r})")
    page = await context.new_page()
    await page.goto(url)
    # `loaded` (the features past the lobby) is absent from checkouts before it: true there
    online = (
        "() => window.__lanCall?.link === 'online' && window.__lanCall.id"
        " && (window.__lanCall.loaded ?? true)"
    )
    await page.wait_for_function(online, timeout=20e3)
    return page


async def bare_run(alice: Page, bob: Page, size: int) -> float:
    offer = await alice.evaluate(BARE_JS, ["offer", None])
    await bob.evaluate(f"() => {{ window.__bareExpect = {size}; }}")
    answer = await bob.evaluate(BARE_JS, ["answer", offer])
    await bob.evaluate(f"() => {{ window.__bare.expect = {size}; }}")
    await alice.evaluate(BARE_JS, ["finish", answer])
    started = await alice.evaluate(BARE_SEND_JS, size)
    await bob.wait_for_function("() => window.__bare.doneAt", timeout=600_000, polling=50)
    done = await bob.evaluate("window.__bare.doneAt")
    await alice.evaluate("() => window.__bare.pc.close()")
    await bob.evaluate("() => window.__bare.pc.close()")
    return size / MiB / ((done - started) / 1000)


async def app_run(alice: Page, bob: Page, size: int, bob_pids: int) -> dict[str, Any]:
    await bob.evaluate(APP_ARM_JS)
    bob_id = await bob.evaluate("window.__lanCall.id")
    cdp = await bob.context.new_cdp_session(bob)
    heap0 = (await cdp.send("Runtime.getHeapUsage"))["usedSize"] / MiB
    pids = descendants(bob_pids)
    rss0, tree0 = rss_mib(pids, True), rss_mib(pids, False)
    peak = {"heap": heap0, "rss": rss0, "tree": tree0}
    types0 = rss_by_type(pids)
    types_peak = dict(types0)
    await alice.evaluate(APP_SEND_JS, [bob_id, size])
    while not await bob.evaluate("window.__bench.doneAt || 0"):
        await asyncio.sleep(0.25)
        heap = (await cdp.send("Runtime.getHeapUsage"))["usedSize"] / MiB
        pids = descendants(bob_pids)
        peak = {
            "heap": max(peak["heap"], heap),
            "rss": max(peak["rss"], rss_mib(pids, True)),
            "tree": max(peak["tree"], rss_mib(pids, False)),
        }
        for kind, mib in rss_by_type(pids).items():
            types_peak[kind] = max(types_peak.get(kind, 0), mib)
    bench = await bob.evaluate("window.__bench")
    if bench.get("state") != "done":
        raise SystemExit(f"the app transfer failed: {bench.get('reason')}")
    seconds = (bench["doneAt"] - bench["acceptedAt"]) / 1000
    # Where the time goes: accept -> first byte written, -> every byte written, -> verified.
    phases = [
        (bench.get("firstAt", bench["doneAt"]) - bench["acceptedAt"]) / 1000,
        (bench.get("allAt", bench["doneAt"]) - bench.get("firstAt", bench["acceptedAt"])) / 1000,
        (bench["doneAt"] - bench.get("allAt", bench["doneAt"])) / 1000,
    ]
    # Leave nothing behind in OPFS for the next run.
    for page in (alice, bob):
        await page.evaluate(DISMISS_ALL_JS)
    await cdp.detach()
    return {
        "mb_s": size / MiB / seconds,
        "phases_s": [round(x, 3) for x in phases],
        "heap_before": heap0,
        "heap_peak": peak["heap"],
        "rss_before": rss0,
        "rss_peak": peak["rss"],
        "tree_before": tree0,
        "tree_peak": peak["tree"],
        "by_type": {k: [round(types0.get(k, 0), 1), round(v, 1)] for k, v in sorted(types_peak.items())},
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        servers, urls = [], {}
        for label, server_dir in (("now", ROOT), ("before", args.before)):
            if server_dir is None:
                continue
            port = free_port()
            certs = Path(tmp) / f"certs-{label}"
            log = Path(tmp) / f"server-{label}.log"
            servers.append(start_server(port, certs, log, server_dir=Path(server_dir), LOG_LEVEL="WARNING"))
            urls[label] = f"https://localhost:{port}/"
            await wait_healthy(urls[label], certs / "ca.pem", within=20)
        try:
            async with async_playwright() as p:
                # Persistent profiles: an incognito-like context (Playwright's default) keeps the
                # origin private file system in the browser process's memory, not on disk.
                browsers = []
                marker = os.getpid()
                for role in ("sender", "receiver"):
                    browsers.append(
                        await p.chromium.launch_persistent_context(
                            str(Path(tmp) / role),
                            executable_path=chromium.executable(),
                            headless=True,
                            ignore_https_errors=True,
                            args=[*chromium.ARGS, chromium.ALLOW_MEDIA, f"--bench-role={role}-{marker}"],
                        )
                    )
                bob_browser = browser_pid(f"--bench-role=receiver-{marker}")
                roots = [browser_pid(f"--bench-role=sender-{marker}"), bob_browser]
                pages = {}
                for label, url in urls.items():
                    alice = await open_app(browsers[0], url, "Alice")
                    bob = await open_app(browsers[1], url, "Bob")
                    await alice.wait_for_function(
                        "() => [...document.querySelectorAll('[data-testid=person]')]"
                        ".some((p) => p.textContent.includes('Bob'))"
                    )
                    pages[label] = (alice, bob)
                # Rounds of: the bare channel, the app now, the app before (if asked), per
                # size; the machine's load drifts, so each figure is the median of its rounds,
                # with the CPU seconds each cost both browsers.
                runs: dict[int, dict[str, Any]] = {}
                for mb in (args.small_mb, args.size_mb):
                    run: dict[str, Any] = {"bare": [], "app": [], "before": [], "cpu": {}}
                    for _ in range(args.rounds):
                        for label in ("bare", "app", "before"):
                            if label == "before" and "before" not in pages:
                                continue
                            alice, bob = pages["before" if label == "before" else "now"]
                            cpu0 = cpu_by_kind(roots)
                            if label == "bare":
                                run["bare"].append(await bare_run(alice, bob, mb * MiB))
                            else:
                                run[label].append(await app_run(alice, bob, mb * MiB, bob_browser))
                            spent = cpu_spent(cpu0, cpu_by_kind(roots))
                            for kind, seconds in spent.items():
                                run["cpu"].setdefault(label, {}).setdefault(kind, []).append(seconds)
                    runs[mb] = run
                for browser in browsers:
                    await browser.close()
        finally:
            for server in servers:
                stop_server(server)

    def summary(mb: int, run: dict[str, Any]) -> dict[str, Any]:
        bare = statistics.median(run["bare"])
        out: dict[str, Any] = {"bare_mb_s": [round(x, 1) for x in run["bare"]]}
        for label in ("app", "before"):
            if run[label]:
                speeds = [r["mb_s"] for r in run[label]]
                out[f"{label}_mb_s"] = [round(x, 1) for x in speeds]
                out[f"{label}_ratio"] = round(statistics.median(speeds) / bare, 2)
        out["phases_s"] = [
            round(statistics.median(r["phases_s"][k] for r in run["app"]), 2) for k in range(3)
        ]
        out["cpu_s_per_100mib"] = {
            label: {k: round(statistics.median(v) * 100 / mb, 2) for k, v in sorted(kinds.items())}
            for label, kinds in run["cpu"].items()
        }
        return out

    return {
        "sizes": {mb: summary(mb, run) for mb, run in runs.items()},
        "memory": {mb: run["app"][-1] for mb, run in runs.items()},
        "rounds": args.rounds,
        "before": str(args.before) if args.before else None,
        "cpus": os.cpu_count(),
        "load": load,
    }


def report(result: dict[str, Any]) -> None:
    print(
        "File transfer, two headless Chromium tabs on loopback, from the accept to the verified "
        f"file; median of {result['rounds']} rounds ({result['cpus']} CPUs, load {result['load']:.1f} before)"
    )
    for mb, run in result["sizes"].items():
        line = f"  {mb:>4} MiB  bare channel {statistics.median(run['bare_mb_s']):5.1f} MiB/s"
        line += f"   LAN Call {statistics.median(run['app_mb_s']):5.1f} MiB/s = {run['app_ratio']:.2f} x"
        if "before_mb_s" in run:
            line += (
                f"   before {statistics.median(run['before_mb_s']):5.1f} MiB/s = {run['before_ratio']:.2f} x"
            )
        print(line)
        rounds = f"bare {run['bare_mb_s']}, now {run['app_mb_s']}"
        if "before_mb_s" in run:
            rounds += f", before {run['before_mb_s']}"
        print(f"            rounds: {rounds}")
        first, middle, last = run["phases_s"]
        print(
            f"            accept -> first byte written {first:.2f} s, -> every byte written "
            f"{middle:.2f} s, -> verified {last:.2f} s"
        )
    print()
    print("  CPU seconds per 100 MiB, both browsers (median), by side and process")
    for mb, run in result["sizes"].items():
        cpu = run["cpu_s_per_100mib"]
        totals = ", ".join(f"{label} {sum(kinds.values()):.1f}" for label, kinds in cpu.items())
        print(f"  {mb:>5} MiB: {totals}")
        kinds = sorted(set(cpu.get("app", {})), key=lambda k: -cpu["app"].get(k, 0))[:4]
        for kind in kinds:
            parts = ", ".join(f"{label} {cpu[label].get(kind, 0):.1f}" for label in cpu)
            print(f"             {kind}: {parts}")
    print()
    print("  receiver (Bob) memory during the last app transfer, MiB: before -> peak")
    print(f"  {'file':>8}  {'JS heap':>16}  {'renderer RSS':>18}  {'browser tree RSS':>20}  {'MiB/s':>6}")
    for mb, m in result["memory"].items():
        print(
            f"  {mb:>5} MB  {m['heap_before']:6.1f} -> {m['heap_peak']:6.1f}"
            f"  {m['rss_before']:7.1f} -> {m['rss_peak']:7.1f}"
            f"  {m['tree_before']:8.1f} -> {m['tree_peak']:8.1f}  {m['mb_s']:6.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--small-mb", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size (medians are shown)")
    parser.add_argument(
        "--before", type=Path, help="another checkout (e.g. a git worktree) to measure in the same run"
    )
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    print(json.dumps(outcome, indent=2) if arguments.json else "", end="")
    if not arguments.json:
        report(outcome)
