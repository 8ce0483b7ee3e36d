"""Relay benchmark for the /rtc signalling server (issue 3, "Performance").

Starts the real server (`python -m server`) on 127.0.0.1 with a throwaway local CA,
connects M idle identified clients (optional), then N client pairs that ping-pong
`icecandidate` messages over TLS WebSockets in a closed loop (one message in flight
per pair), and prints:

* relayed messages/s (messages delivered to clients inside the measurement window),
* one-way relay latency p50/p99 (each candidate carries its send time in an extra
  `data.candidate.sentNs` field, which the server copies through; sender and receiver of a
  pair live in the same load-generator process and read the same monotonic clock),
* server RSS per idle connection (VmRSS of the server process before and after the
  idle clients joined, divided by their number; with --idle 0, per pair connection),
* CPU used by the server and by the load generator during the window, so a reader can
  see which one was the bottleneck.

The load generator is a minimal WebSocket client on asyncio protocols (uvloop when
importable), split over --workers processes. It behaves like a browser where it
matters to the server: it offers permessage-deflate (the server must decline it),
sends an Origin header naming the host, masks every frame with a fresh key, answers
pings, verifies the certificate against the generated CA, and JSON-encodes and
-decodes every relayed message.

    .venv/bin/python bench/relay.py                    # 100 pairs, 10 s
    .venv/bin/python bench/relay.py --idle 3000        # the same beside 3,000 idle clients
    .venv/bin/python bench/relay.py --quick            # smoke run, a few seconds
    .venv/bin/python bench/relay.py --without orjson   # A/B: server without orjson
    .venv/bin/python bench/relay.py --node DIR         # the original Node server, built in DIR

`--without MODULE` makes an optional 'fast' extra unimportable in the server process
only (`uvloop` matters only for a server version whose `run()` picks it up).

Only loopback is ever contacted. Every loop here is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.support, shared with the tests

from tests.support.benchproc import (  # noqa: E402
    cpu_seconds_of,
    loaded,
    machine_busy_seconds,
    percentile,
    raise_nofile,
    rss_kib,
    stop_server,
)
from tests.support.benchproc import start_server as start_bench_server  # noqa: E402
from tests.support.net import LOOPBACK, free_port  # noqa: E402
from tests.support.servers import SERVER_ARGV  # noqa: E402
from tests.support.wsclient import Client  # noqa: E402

HOST = LOOPBACK  # the only address this benchmark ever talks to
SERVER_NAME = "localhost"  # a name the generated certificate covers (also 127.0.0.1)

# What Chrome sends for a host candidate (mDNS-obfuscated address), ~150 bytes.
CANDIDATE = {
    "candidate": (
        "candidate:1467250027 1 udp 2122260223 7f3c9c1e-5a8b-4a8e-9d3f-2b4c1a6e8f10.local "
        "46243 typ host generation 0 ufrag EsAw network-id 1 network-cost 10"
    ),
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "EsAw",
}
# High enough that the per-socket token bucket (default 50/s, burst 200) never throttles
# the closed loop, whose per-socket rate is throughput / (2 * pairs).
RATE_LIMIT = 1_000_000


# --- load generator: pairs of browser-like clients (tests/support/wsclient.py) -----------


class Pair:
    """Two clients bouncing one candidate back and forth."""

    def __init__(self, a: Client, b: Client, stats: Stats) -> None:
        self.a, self.b, self.stats = a, b, stats
        a.on_candidate = self._received_by(a, b)
        b.on_candidate = self._received_by(b, a)

    def _received_by(self, me: Client, other: Client) -> Callable[[dict[str, Any]], None]:
        stats = self.stats
        now_ns = time.monotonic_ns

        def received(data: dict[str, Any]) -> None:
            now = now_ns()
            if data.get("id") != other.id or data.get("source") != other.id:
                stats.misrouted += 1
            if stats.measuring:
                stats.latencies.append(now - data["candidate"]["sentNs"])
            if stats.running:
                send_candidate(me, other)

        return received

    def start(self) -> None:
        send_candidate(self.a, self.b)


def send_candidate(sender: Client, target: Client) -> None:
    sender.send_json(
        {
            "type": "icecandidate",
            "data": {
                # Stamped by our server anyway; the original server forwards them as sent.
                "id": sender.id,
                "source": sender.id,
                "target": target.id,
                # Inside the candidate object: the server forwards only documented `data`
                # fields (docs/protocol.md §2) but passes the candidate object through whole.
                "candidate": {**CANDIDATE, "sentNs": time.monotonic_ns()},
            },
        }
    )


class Stats:
    def __init__(self) -> None:
        self.running = False
        self.measuring = False
        self.latencies = array("q")
        self.misrouted = 0


class Worker:
    """One load-generator process: its share of idle clients and pairs."""

    def __init__(self, port: int, ca: str, connect_concurrency: int) -> None:
        self.port = port
        self.host = f"{SERVER_NAME}:{port}"
        self.context = ssl.create_default_context(cafile=ca)  # verifies: no checks turned off
        self.gate = asyncio.Semaphore(connect_concurrency)
        self.clients: list[Client] = []
        self.pairs: list[Pair] = []
        self.stats = Stats()

    async def connect(self, name: str) -> Client:
        loop = asyncio.get_running_loop()
        async with self.gate:
            _, client = await loop.create_connection(
                lambda: Client(self.host),
                HOST,
                self.port,
                ssl=self.context,
                server_hostname=SERVER_NAME,
            )
            await asyncio.wait_for(client.ready, 30)
        client.send_json({"type": "identify", "data": {"id": client.id, "name": name}})
        self.clients.append(client)
        return client

    async def settle(self, total: int, limit: float) -> None:
        """Wait until every client has seen every other identified client announced: then
        the server has handled every identify and delivered every announcement."""
        deadline = time.monotonic() + limit
        while any(c.peers_seen < total - 1 for c in self.clients):
            if time.monotonic() > deadline:
                short = sum(1 for c in self.clients if c.peers_seen < total - 1)
                raise TimeoutError(f"{short} clients still waiting for announcements")
            await asyncio.sleep(0.05)

    async def add_idle(self, wid: int, count: int) -> None:
        await asyncio.gather(*(self.connect(f"idle {wid}-{i}") for i in range(count)))

    async def add_pairs(self, wid: int, count: int) -> None:
        async def pair(i: int) -> None:
            a, b = await asyncio.gather(self.connect(f"a {wid}-{i}"), self.connect(f"b {wid}-{i}"))
            self.pairs.append(Pair(a, b, self.stats))

        await asyncio.gather(*(pair(i) for i in range(count)))

    async def run(self, start_at: float, warmup: float, seconds: float) -> dict[str, Any]:
        stats = self.stats
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        stats.running = True
        for p in self.pairs:
            p.start()
        await asyncio.sleep(max(0.0, start_at + warmup - time.monotonic()))
        cpu0 = _cpu_seconds()
        stats.measuring = True
        await asyncio.sleep(max(0.0, start_at + warmup + seconds - time.monotonic()))
        stats.measuring = False
        cpu1 = _cpu_seconds()
        stats.running = False
        await asyncio.sleep(0.3)  # let in-flight messages land before anyone leaves
        return {
            "latencies": stats.latencies.tobytes(),
            "cpu": cpu1 - cpu0,
            "misrouted": stats.misrouted,
            "errors": [e for c in self.clients for e in c.errors][:20],
            "lost": sum(1 for c in self.clients if c.lost.done()),
        }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_main(pipe: Connection, wid: int, port: int, ca: str, use_uvloop: bool, nofile: int) -> None:
    raise_nofile(nofile)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        worker = Worker(port, ca, connect_concurrency=32)
        while True:
            command, *args = await loop.run_in_executor(None, pipe.recv)
            try:
                if command == "idle":
                    await worker.add_idle(wid, args[0])
                    await worker.settle(args[1], args[2])
                    reply: Any = "ok"
                elif command == "pairs":
                    await worker.add_pairs(wid, args[0])
                    await worker.settle(args[1], args[2])
                    reply = "ok"
                elif command == "run":
                    reply = await worker.run(*args)
                else:
                    for c in worker.clients:
                        if c.transport:
                            c.transport.abort()
                    pipe.send("bye")
                    return
            except Exception as exc:  # reported by the parent, which stops everything
                reply = f"error: {type(exc).__name__}: {exc}"
            pipe.send(reply)

    if use_uvloop:
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())


# --- the server under test ------------------------------------------------------------------


def start_server(
    port: int, certs: Path, max_clients: int, without: list[str], log: Path, server_dir: Path = REPO
) -> subprocess.Popen[bytes]:
    argv = list(SERVER_ARGV)
    if without:  # A/B: make the optional 'fast' extras unimportable in the server only
        blocked = ", ".join(repr(m) for m in without)
        code = (
            f"import sys, runpy\nfor m in ({blocked},): sys.modules[m] = None\n"
            "runpy.run_module('server', run_name='__main__', alter_sys=True)"
        )
        argv = [sys.executable, "-c", code]
    # `python -m server` imports the server package from its working directory, so
    # --server-dir runs another checkout (e.g. the previous commit) for an A/B.
    return start_bench_server(
        port,
        certs,
        log,
        server_dir,
        argv,
        MAX_CLIENTS=str(max_clients),
        RATE_LIMIT=str(RATE_LIMIT),
        RATE_BURST=str(RATE_LIMIT),
        # Every load-generator client comes from 127.0.0.1: the per-address limits would
        # treat them all as one abuser.
        ADDRESS_RATE_LIMIT="0",
        JOIN_RATE="0",
        MAX_CONNECTIONS_PER_ADDRESS="0",
    )


NODE_PORT = 3000  # the original server listens on 3000 whatever PORT says


def start_node_server(directory: Path, certs: Path, log: Path) -> subprocess.Popen[bytes]:
    """The original SitePen server (`npm install && npm run build` in `directory`, which
    lies outside this repository), with a certificate from the same kind of local CA."""
    from server.tls import ensure_local_certificates

    files = ensure_local_certificates(certs, ["localhost", "127.0.0.1"])
    return start_bench_server(
        NODE_PORT,
        certs,
        log,
        directory,
        ["node", "server/index.js"],
        CERT=str(files.cert),
        KEY=str(files.key),
    )


# --- orchestration -----------------------------------------------------------------------------


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def collect(pipes: list[Connection], step: str, timeout: float) -> list[Any]:
    """One reply from every load generator; any failure stops the benchmark."""
    replies = []
    deadline = time.monotonic() + timeout
    for pipe in pipes:
        if not pipe.poll(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"load generator did not finish {step!r} within {timeout:.0f} s")
        reply = pipe.recv()
        if isinstance(reply, str) and reply != "ok":
            raise RuntimeError(f"load generator failed during {step!r}: {reply}")
        replies.append(reply)
    return replies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, help="client pairs ping-ponging (default 100; --quick 20)")
    parser.add_argument("--seconds", type=float, help="measured seconds (default 10; --quick 2)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds first (default 1; --quick 0.5)")
    parser.add_argument("--idle", type=int, default=0, help="idle identified clients connected first")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--client-loop", choices=["uvloop", "asyncio"], help="load-generator event loop (default uvloop)"
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=["uvloop", "orjson"],
        help="A/B: run the server with this optional 'fast' extra made unimportable",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    parser.add_argument(
        "--node",
        type=Path,
        help="run the original Node server built in this folder instead (port 3000 must be free)",
    )
    parser.add_argument(
        "--server-dir",
        type=Path,
        default=REPO,
        help="run the server from this checkout instead (A/B against another commit: git worktree add)",
    )
    args = parser.parse_args(argv)
    pairs = args.pairs if args.pairs is not None else (20 if args.quick else 100)
    seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    workers = max(1, args.workers)
    client_loop = args.client_loop
    if client_loop is None:
        try:
            import uvloop  # noqa: F401

            client_loop = "uvloop"
        except ImportError:
            client_loop = "asyncio"

    total_clients = args.idle + 2 * pairs
    max_clients = total_clients + 100
    soft, hard = raise_nofile(total_clients + 256)  # the server inherits this limit
    if soft < max_clients + 64:
        print(
            f"warning: RLIMIT_NOFILE is {soft} (hard {hard}); the server needs about "
            f"{max_clients + 64} descriptors: raise it (ulimit -n) before benchmarking",
            file=sys.stderr,
        )

    tmp = Path(tempfile.mkdtemp(prefix="lan-call-bench-"))
    log = tmp / "server.log"
    if args.node is not None:
        port = NODE_PORT
        server = start_node_server(args.node.resolve(), tmp / "certs", log)
    else:
        port = free_port()
        server = start_server(port, tmp / "certs", max_clients, args.without, log, args.server_dir.resolve())
    print(f"server pid {server.pid} listening on {HOST}:{port} (log {log})", flush=True)
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    procs: list[Any] = []
    setup_timeout = 60 + total_clients**2 / 20_000  # the join storm is O(clients²)
    try:
        for wid in range(workers):
            parent, child = ctx.Pipe()
            nofile = (total_clients // workers) + 256
            proc = ctx.Process(
                target=worker_main,
                args=(child, wid, port, str(tmp / "certs" / "ca.pem"), client_loop == "uvloop", nofile),
                daemon=True,
            )
            proc.start()
            pipes.append(parent)
            procs.append(proc)

        time.sleep(0.5)
        rss_start = rss_kib(server.pid)
        t0 = time.monotonic()
        if args.idle:
            print(f"connecting {args.idle} idle clients (every join is announced to everyone)...", flush=True)
            for pipe, n in zip(pipes, split(args.idle, workers), strict=True):
                pipe.send(("idle", n, args.idle, setup_timeout))
            collect(pipes, "idle", setup_timeout + 30)
            time.sleep(1.0)
        idle_seconds = time.monotonic() - t0
        rss_idle = rss_kib(server.pid)

        t0 = time.monotonic()
        for pipe, n in zip(pipes, split(pairs, workers), strict=True):
            pipe.send(("pairs", n, total_clients, setup_timeout))
        collect(pipes, "pairs", setup_timeout + 30)
        time.sleep(0.5)
        pairs_seconds = time.monotonic() - t0
        rss_pairs = rss_kib(server.pid)

        start_at = time.monotonic() + 0.3
        for pipe in pipes:
            pipe.send(("run", start_at, warmup, seconds))
        time.sleep(max(0.0, start_at + warmup - time.monotonic()))
        server_cpu0, busy0 = cpu_seconds_of(server.pid), machine_busy_seconds()
        time.sleep(max(0.0, start_at + warmup + seconds - time.monotonic()))
        server_cpu1, busy1 = cpu_seconds_of(server.pid), machine_busy_seconds()
        results = collect(pipes, "run", 30)
        rss_end = rss_kib(server.pid)
        uses_uvloop, uses_orjson = loaded(server.pid, "uvloop"), loaded(server.pid, "orjson")
    finally:
        stop_server(server)
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(("bye",))
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()

    latencies: list[int] = []
    for r in results:
        chunk = array("q")
        chunk.frombytes(r["latencies"])
        latencies.extend(chunk)
    latencies.sort()
    figures = {
        "server": "node" if args.node is not None else "python",
        "pairs": pairs,
        "idle": args.idle,
        "seconds": seconds,
        "workers": workers,
        "client_loop": client_loop,
        "server_uvloop": uses_uvloop,
        "server_orjson": uses_orjson,
        "msgs_per_s": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": latencies[-1] / 1e6 if latencies else float("nan"),
        "server_cpu": (server_cpu1 - server_cpu0) / seconds,
        "loadgen_cpu": sum(r["cpu"] for r in results) / seconds,
        "server_cpu_us_per_msg": (server_cpu1 - server_cpu0) / max(1, len(latencies)) * 1e6,
        "other_cpu": max(0.0, (busy1 - busy0 - (server_cpu1 - server_cpu0)) / seconds)
        - sum(r["cpu"] for r in results) / seconds,
        "rss_start_kib": rss_start,
        "rss_idle_kib": rss_idle,
        "rss_pairs_kib": rss_pairs,
        "rss_end_kib": rss_end,
        "rss_per_idle_kib": (rss_idle - rss_start) / args.idle if args.idle else None,
        "rss_per_pair_conn_kib": (rss_pairs - rss_idle) / (2 * pairs) if pairs else None,
        "misrouted": sum(r["misrouted"] for r in results),
        "errors": [e for r in results for e in r["errors"]],
        "lost": sum(r["lost"] for r in results),
    }

    def ms(v: float) -> str:
        return f"{v:.2f} ms"

    print()
    print("LAN Call relay benchmark")
    if args.node is not None:
        print(
            f"  server      the original Node server (node server/index.js in {args.node}), port {port}, TLS"
        )
    else:
        print(
            f"  server      python -m server on {HOST}:{port}, TLS; event loop "
            f"{'uvloop' if uses_uvloop else 'asyncio'}, JSON {'orjson' if uses_orjson else 'json'}"
            + (f" (--without {','.join(args.without)})" if args.without else "")
            + (f"; from {args.server_dir}" if args.server_dir.resolve() != REPO else "")
        )
    print(
        f"  settings    RATE_LIMIT=RATE_BURST={RATE_LIMIT} so the per-socket rate limit (default 50/s)"
        f" does not throttle the closed loop; ADDRESS_RATE_LIMIT=JOIN_RATE=MAX_CONNECTIONS_PER_ADDRESS=0"
        f" (all clients share 127.0.0.1); MAX_CLIENTS={max_clients}, ECHO=0, RELOAD=off, STATE_FILE="
    )
    print(
        f"  machine     {os.cpu_count()} cores shared by the server and {workers} load-generator "
        f"process(es) ({client_loop}): the server does not have the machine to itself"
    )
    print(
        f"  load        {pairs} pairs ping-ponging icecandidate (1 in flight per pair), "
        f"{args.idle} idle identified clients; {seconds:g} s measured after {warmup:g} s warm-up"
    )
    if args.idle:
        print(f"  setup       idle clients joined in {idle_seconds:.1f} s, pairs in {pairs_seconds:.1f} s")
    print(f"  relayed     {figures['msgs_per_s']:,.0f} messages/s")
    print(
        f"  latency     one-way p50 {ms(figures['p50_ms'])}, p99 {ms(figures['p99_ms'])}, "
        f"max {ms(figures['max_ms'])}"
    )
    print(
        f"  CPU         server {figures['server_cpu']:.0%} of one core, load generator "
        f"{figures['loadgen_cpu']:.0%} of one core (sum over processes); server "
        f"{figures['server_cpu_us_per_msg']:.1f} µs CPU per relayed message"
    )
    if figures["server_cpu"] >= 0.9:
        print("  bottleneck  the server (saturated): these are its limits with the load generator beside it")
    else:
        print(
            f"  bottleneck  not the server ({figures['server_cpu']:.0%} busy): the load generator, other "
            "load or the closed loop limits these figures (try --workers)"
        )
    if figures["other_cpu"] > 0.1:
        print(
            f"  WARNING     other processes used {figures['other_cpu']:.0%} of a core during the "
            "window: throughput and latency are understated; compare µs per message instead"
        )
    per_pair = figures["rss_per_pair_conn_kib"]
    rss_line = f"  server RSS  {rss_start / 1024:.1f} MiB at start"
    if args.idle:
        rss_line += f", {figures['rss_per_idle_kib']:.1f} KiB per idle connection ({args.idle} idle)"
    if per_pair is not None:
        rss_line += f", {per_pair:.1f} KiB per pair connection before load"
    print(rss_line + f"; {rss_end / 1024:.1f} MiB at end")
    problems = figures["misrouted"] or figures["errors"] or figures["lost"]
    print(
        f"  integrity   misrouted {figures['misrouted']}, errors {len(figures['errors'])}, "
        f"connections lost {figures['lost']}"
    )
    for error in figures["errors"][:5]:
        print(f"    error: {error}")
    if args.json:
        print(json.dumps(figures))
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
