"""This server against the original SitePen Node server, same load generator, one run.

    .venv/bin/python bench/versus_node.py /tmp/webrtc-blog                # 100 pairs, then --idle 1000
    .venv/bin/python bench/versus_node.py /tmp/webrtc-blog --rounds 1 --quick

The original must be built outside this repository first (its code is never committed
here): fetch SitePen/webrtc-blog into a scratch folder, then `npm install && npm run
build` there. Each round runs bench/relay.py against this server and then against the
original (alternating, so drift in the machine's load hits both), for two loads: 100
pairs ping-ponging `icecandidate`, and the same beside --idle idle clients. Printed:
messages/s, p99, server CPU per message, and the ratio this/original for each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def relay(extra: list[str]) -> dict[str, float]:
    argv = [sys.executable, str(HERE / "relay.py"), "--json", *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"relay.py {' '.join(extra)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    figures: dict[str, float] = json.loads(lines[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("node_dir", type=Path, help="the built original (npm install && npm run build)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=int, default=1000, help="idle clients for the second load (0: skip)")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    args = parser.parse_args()
    loads = [("100 pairs", [])]
    if args.idle:
        loads.append((f"100 pairs + {args.idle} idle", ["--idle", str(args.idle)]))
    quick = ["--quick"] if args.quick else []
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    for round_ in range(1, args.rounds + 1):
        for load, extra in loads:
            for server, flag in (("this", []), ("original", ["--node", str(args.node_dir)])):
                figures = relay([*extra, *flag, *quick])
                rows.setdefault((load, server), []).append(figures)
                print(
                    f"round {round_}  {load:<22} {server:<9} {figures['msgs_per_s']:>9,.0f} msg/s  "
                    f"p99 {figures['p99_ms']:6.2f} ms  {figures['server_cpu_us_per_msg']:5.1f} µs/msg  "
                    f"other load {figures['other_cpu']:.0%}",
                    flush=True,
                )
    print()
    print(
        f"{'load':<24} {'msg/s this/original':>22} {'p99 this / original':>24} {'CPU/msg this/original':>24}"
    )
    for load, _ in loads:
        this, orig = rows[(load, "this")], rows[(load, "original")]
        ratio = [a["msgs_per_s"] / b["msgs_per_s"] for a, b in zip(this, orig, strict=True)]
        cpu = [
            a["server_cpu_us_per_msg"] / b["server_cpu_us_per_msg"] for a, b in zip(this, orig, strict=True)
        ]
        p99_this, p99_orig = (statistics.median(r["p99_ms"] for r in rows_) for rows_ in (this, orig))
        p99 = f"{p99_this:.1f} / {p99_orig:.1f} ms"
        print(
            f"{load:<24} {min(ratio):>9.2f}–{max(ratio):.2f}x{'':>9} {p99:>24} "
            f"{min(cpu):>12.2f}–{max(cpu):.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
