"""Several instances on one Redis (issue 14): relay throughput and latency across
instances next to one instance, and memory per idle identified socket.

    .venv/bin/python bench/cluster.py [--pairs 50] [--seconds 8] [--idle 2000] [--workers 4]
    .venv/bin/python bench/cluster.py --pairs 0 --idle 10000 --alive-ttl 30   # issue 14's figure
    .venv/bin/python bench/cluster.py --pairs 0 --idle 4000 --without uvloop     # A/B

1. **Relay**: `--pairs` pairs of browser-like clients (tests/support/wsclient.py) bounce
   one `icecandidate` back and forth as fast as the server answers (a closed loop), first
   with both ends on one instance (no REDIS_URL), then with the two ends of every pair on
   two instances sharing one redis-server. Prints messages/s and p50/p99 latency.
   `--pairs 0` skips it.
2. **Memory**: `--idle` TLS WebSocket clients connect and identify, half on each of two
   fresh instances sharing one redis-server. The first half joins instance A, then the
   second half joins instance B, so the RSS growth splits into what a socket costs the
   instance that holds it and what its mirror costs the other instance (every instance
   keeps a mirror of each peer the others hold, to list it and route to it). Prints RSS
   growth per socket of each instance and of both together, redis-server's growth, how
   long joining took (every join is announced to every client: the join storm is
   O(clients²) frames) and the CPU seconds it took. The idle clients are spread over
   `--workers` load-generator processes (uvloop when importable), `--connecting` joins in
   flight in all; a join counts once the client has seen every other one announced, and
   an instance's half once the other instance lists it too (its /metrics). Warnings the
   servers logged are printed after the figures (`event=instance-lost` voids them).

`--without uvloop` makes uvloop unimportable in the servers only (they then run on
asyncio's loop and TLS), as in bench/relay.py. `--alive-ttl` sets how long an instance
may go without a heartbeat before the others take it for dead (server/cluster.py's
ALIVE_TTL_MS, 3 s): on these 2 cores, 10,000 joining clients delay a busy instance's
heartbeat past 3 s (`event=instance-lost`, the run stops), so that figure needs a longer
TTL; the memory it measures does not depend on it. The 10,000 run takes about 30 minutes.
With 10,000 idle clients each server holds 5,000 sockets and the load-generator processes
10,000 between them; every process raises its own soft descriptor limit (`ulimit -Hn`
must allow it).

Everything runs on this machine: the load generator, the servers and redis-server share
its cores (the relay figures are therefore a comparison, not a capacity). Only loopback
is contacted; every wait is bounded in time; every process started here is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import resource
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from server.protocol import SPACE_ALPHABET  # noqa: E402
from tests.support.benchproc import (  # noqa: E402
    cpu_seconds_of,
    loaded,
    percentile,
    raise_nofile,
    rss_kib,
    start_server,
    stop_server,
)
from tests.support.net import LOOPBACK, free_port  # noqa: E402
from tests.support.redisserver import RedisServer  # noqa: E402
from tests.support.servers import SERVER_ARGV  # noqa: E402
from tests.support.wsclient import Client  # noqa: E402

SERVER_NAME = "localhost"
CANDIDATE = {
    "candidate": (
        "candidate:1467250027 1 udp 2122260223 7f3c9c1e-5a8b-4a8e-9d3f-2b4c1a6e8f10.local "
        "46243 typ host generation 0 ufrag EsAw network-id 1 network-cost 10"
    ),
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "EsAw",
}
LOAD_SETTINGS = {
    "RATE_LIMIT": "1000000",
    "RATE_BURST": "1000000",
    # Every client comes from 127.0.0.1: the per-address limits would see one abuser.
    "ADDRESS_RATE_LIMIT": "0",
    "JOIN_RATE": "0",
    "MAX_CONNECTIONS_PER_ADDRESS": "0",
    "LOG_LEVEL": "WARNING",
}


def server_argv(without: Sequence[str], alive_ttl: float | None) -> list[str]:
    """`python -m server`, or the same with optional extras made unimportable (A/B) or
    another liveness TTL (`server.cluster.ALIVE_TTL_MS`, a constant, not a setting)."""
    if not without and alive_ttl is None:
        return list(SERVER_ARGV)
    code = "import sys, runpy\n"
    if without:
        code += f"for m in ({', '.join(repr(m) for m in without)},): sys.modules[m] = None\n"
    if alive_ttl is not None:
        code += f"import server.cluster\nserver.cluster.ALIVE_TTL_MS = {round(alive_ttl * 1000)}\n"
    return [sys.executable, "-c", code + "runpy.run_module('server', run_name='__main__', alter_sys=True)"]


# --- 1. relay: one load generator in this process --------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.running = False
        self.measuring = False
        self.latencies = array("q")
        self.misrouted = 0


def send_candidate(sender: Client, target: Client) -> None:
    candidate = {**CANDIDATE, "sentNs": time.monotonic_ns()}
    sender.send_json({"type": "icecandidate", "data": {"target": target.id, "candidate": candidate}})


def bounce(me: Client, other: Client, stats: Stats) -> Callable[[dict[str, Any]], None]:
    def received(data: dict[str, Any]) -> None:
        if data.get("id") != other.id:
            stats.misrouted += 1
        if stats.measuring:
            stats.latencies.append(time.monotonic_ns() - data["candidate"]["sentNs"])
        if stats.running:
            send_candidate(me, other)

    return received


async def connect(
    port: int, context: ssl.SSLContext, name: str, gate: asyncio.Semaphore, space: str | None = None
) -> Client:
    loop = asyncio.get_running_loop()
    async with gate:
        _, client = await loop.create_connection(
            lambda: Client(f"{SERVER_NAME}:{port}"), LOOPBACK, port, ssl=context, server_hostname=SERVER_NAME
        )
        await asyncio.wait_for(client.ready, 60)
    identify: dict[str, Any] = {"id": client.id, "name": name}
    if space is not None:
        identify["space"] = space
    client.send_json({"type": "identify", "data": identify})
    return client


async def settle(clients: Sequence[Client], wanted: Sequence[int], limit: float) -> None:
    """Every client has seen its `wanted` number of others announced (so every instance
    mirrors them all)."""
    deadline = time.monotonic() + limit
    while any(c.peers_seen < n for c, n in zip(clients, wanted, strict=True)):
        if time.monotonic() > deadline:
            short = sum(1 for c, n in zip(clients, wanted, strict=True) if c.peers_seen < n)
            raise TimeoutError(f"{short} clients still waiting for announcements after {limit:.0f} s")
        await asyncio.sleep(0.1)


def space_code(index: int) -> str:
    """A valid space code (docs/protocol.md §11) for space number `index`."""
    digits = ""
    for _ in range(3):
        index, digit = divmod(index, len(SPACE_ALPHABET))
        digits += SPACE_ALPHABET[digit]
    return "SPC" + digits


async def relay(ports: list[int], context: ssl.SSLContext, pairs: int, seconds: float) -> dict[str, float]:
    gate = asyncio.Semaphore(50)
    ends = await asyncio.gather(
        *(
            connect(ports[i % 2 if len(ports) > 1 else 0], context, f"{i // 2} {i % 2}", gate)
            for i in range(2 * pairs)
        )
    )
    await settle(ends, [2 * pairs - 1] * len(ends), 60)
    stats = Stats()
    for a, b in zip(ends[::2], ends[1::2], strict=True):
        a.on_candidate, b.on_candidate = bounce(a, b, stats), bounce(b, a, stats)
    stats.running = True
    for a, b in zip(ends[::2], ends[1::2], strict=True):
        send_candidate(a, b)
    await asyncio.sleep(2.0)  # warm-up
    stats.measuring = True
    await asyncio.sleep(seconds)
    stats.measuring = False
    stats.running = False
    await asyncio.sleep(0.5)
    errors = [e for c in ends for e in c.errors]
    for client in ends:
        if client.transport is not None:
            client.transport.close()
    latencies = sorted(stats.latencies)
    return {
        "msgs_per_s": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "misrouted": stats.misrouted,
        "errors": len(errors),
    }


def print_relay(label: str, figures: dict[str, float]) -> None:
    print(
        f"{label:<34} {figures['msgs_per_s']:>9,.0f} msg/s   p50 {figures['p50_ms']:6.2f} ms   "
        f"p99 {figures['p99_ms']:6.2f} ms   misrouted {figures['misrouted']:.0f}   "
        f"errors {figures['errors']:.0f}",
        flush=True,
    )


# --- 2. idle clients: load-generator processes, driven over a pipe ----------------------------


def idle_worker(pipe: Connection, wid: int, ca: str, use_uvloop: bool, nofile: int, concurrency: int) -> None:
    """One load-generator process. Commands: ("connect", port, spaces, label) connects and
    identifies one client per entry of `spaces` (a space code, or None for the open
    network); ("settle", people, limit) waits until each client has seen everyone else
    `people` counts in its space announced; ("report",) says what went wrong; ("bye",)
    closes all."""
    raise_nofile(nofile)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context(cafile=ca)  # verifies: no checks turned off
        gate = asyncio.Semaphore(concurrency)
        clients: list[Client] = []
        spaces: list[str | None] = []
        while True:
            command, *args = await loop.run_in_executor(None, pipe.recv)
            reply: Any = "ok"
            try:
                if command == "connect":
                    port, codes, label = args
                    joins = (
                        connect(port, context, f"idle {label}{wid}-{i}", gate, c) for i, c in enumerate(codes)
                    )
                    clients += await asyncio.gather(*joins)
                    spaces += codes
                elif command == "settle":
                    people, limit = args
                    await settle(clients, [people[space] - 1 for space in spaces], limit)
                elif command == "report":
                    usage = resource.getrusage(resource.RUSAGE_SELF)
                    reply = {
                        "errors": [e for c in clients for e in c.errors][:20],
                        "lost": sum(1 for c in clients if c.lost.done()),
                        "cpu": usage.ru_utime + usage.ru_stime,
                    }
                else:
                    for c in clients:
                        if c.transport is not None:
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


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def check_logs(logs: Sequence[Path]) -> None:
    """Stop at once when an instance took the other for dead: its people are being dropped
    from the other's list, so the run can neither settle nor give figures."""
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if "event=instance-lost" in line:
                raise RuntimeError(f"{log.name}: {line.strip()}")


def ask(
    pipes: Sequence[Connection],
    commands: Sequence[tuple[Any, ...]],
    step: str,
    limit: float,
    logs: Sequence[Path] = (),
) -> list[Any]:
    """Send each load generator its command; one reply from each within `limit` seconds,
    watching the servers' `logs` meanwhile."""
    for pipe, command in zip(pipes, commands, strict=True):
        pipe.send(command)
    replies = []
    deadline = time.monotonic() + limit
    for pipe in pipes:
        while not pipe.poll(min(2.0, max(0.0, deadline - time.monotonic()))):
            check_logs(logs)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"a load generator did not finish {step} within {limit:.0f} s")
        reply = pipe.recv()
        if isinstance(reply, str) and reply != "ok":
            raise RuntimeError(f"a load generator failed during {step}: {reply}")
        replies.append(reply)
    return replies


def listed_peers(port: int, context: ssl.SSLContext) -> int:
    """People an instance lists (its own and its mirrors), from its /metrics."""
    url = f"https://{SERVER_NAME}:{port}/metrics"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("lan_call_listed_peers "):
                return int(float(line.split()[1]))
    raise RuntimeError(f"no lan_call_listed_peers in {url}")


def wait_listed(port: int, context: ssl.SSLContext, count: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while (listed := listed_peers(port, context)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"instance on port {port} lists {listed} people, not {count}, after {limit:.0f} s"
            )
        time.sleep(0.2)


class Snapshot:
    """RSS of both servers and redis-server, and the servers' CPU seconds, at one moment."""

    def __init__(self, pids: Sequence[int], redis_pid: int) -> None:
        self.rss = [rss_kib(pid) for pid in pids]
        self.cpu = [cpu_seconds_of(pid) for pid in pids]
        self.redis = rss_kib(redis_pid)
        self.at = time.monotonic()


def idle(
    ports: list[int],
    pids: list[int],
    redis_pid: int,
    certs: Path,
    logs: Sequence[Path],
    count: int,
    workers: int,
    connecting: int,
    space_size: int,
    client_loop: str,
) -> None:
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    halves = [count // 2, count - count // 2]
    # The join storm is O(clients²) frames: 200 s for 4,000 here, so a generous bound.
    limit = 120 + count**2 / 40_000
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    procs: list[Any] = []
    try:
        for wid in range(workers):
            parent, child = ctx.Pipe()
            nofile = count // workers + 256
            proc = ctx.Process(
                target=idle_worker,
                args=(
                    child,
                    wid,
                    str(certs / "ca.pem"),
                    client_loop == "uvloop",
                    nofile,
                    -(-connecting // workers),
                ),
                daemon=True,
            )
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        for port in ports:  # the first /metrics scrape allocates; keep it out of the figures
            listed_peers(port, context)
        time.sleep(1.0)
        snapshots = [Snapshot(pids, redis_pid)]
        expected = 0
        people: Counter[str | None] = Counter()  # per space, both halves so far
        for half, (port, n) in enumerate(zip(ports, halves, strict=True)):
            print(f"  {n} clients joining instance {'AB'[half]}...", flush=True)
            expected += n
            # Each space gets half its people on each instance.
            codes = [space_code(j // (space_size // 2)) if space_size else None for j in range(n)]
            people.update(codes)
            connects = [("connect", port, codes[w::workers], "AB"[half]) for w in range(workers)]
            ask(pipes, connects, f"connecting half {half}", limit, logs)
            ask(
                pipes,
                [("settle", dict(people), limit)] * workers,
                f"announcements of half {half}",
                limit + 30,
                logs,
            )
            for p in ports:
                wait_listed(p, context, expected, 60)
            snapshots.append(Snapshot(pids, redis_pid))
        time.sleep(2.0)
        final = Snapshot(pids, redis_pid)
        reports = ask(pipes, [("report",)] * workers, "report", 30)
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(("bye",))
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)

    start, after_a, after_b = snapshots
    errors = [e for r in reports for e in r["errors"]]
    lost = sum(r["lost"] for r in reports)

    def grown(a: Snapshot, b: Snapshot, i: int) -> float:
        return b.rss[i] - a.rss[i]

    print(
        f"  joined: A's {halves[0]} in {after_a.at - start.at:.1f} s, B's {halves[1]} in "
        f"{after_b.at - after_a.at:.1f} s ({after_b.at - start.at:.1f} s in all); server CPU "
        f"A {final.cpu[0] - start.cpu[0]:.1f} s, B {final.cpu[1] - start.cpu[1]:.1f} s",
        flush=True,
    )
    print(
        f"  while A's clients joined: A +{grown(start, after_a, 0) / halves[0]:.1f} KiB per socket it holds, "
        f"B +{grown(start, after_a, 1) / halves[0]:.1f} KiB per mirror of them"
    )
    print(
        f"  while B's clients joined: B +{grown(after_a, after_b, 1) / halves[1]:.1f} KiB per socket "
        "it holds, "
        f"A +{grown(after_a, after_b, 0) / halves[1]:.1f} KiB per mirror of them"
    )
    both = sum(final.rss) - sum(start.rss)
    print(
        f"  RSS per socket (each instance holding {halves[0]} / {halves[1]} and mirroring the other's): "
        f"A {grown(start, final, 0) / halves[0]:.1f} KiB, B {grown(start, final, 1) / halves[1]:.1f} KiB, "
        f"both together {both / count:.1f} KiB per client; servers at "
        f"{final.rss[0] / 1024:.0f} / {final.rss[1] / 1024:.0f} MiB (from "
        f"{start.rss[0] / 1024:.0f} / {start.rss[1] / 1024:.0f})"
    )
    print(
        f"  redis-server +{(final.redis - start.redis) / count:.2f} KiB per client "
        f"({start.redis / 1024:.1f} -> {final.redis / 1024:.1f} MiB)"
    )
    print(f"  load generators: {sum(r['cpu'] for r in reports):.1f} CPU s in all", flush=True)
    print(f"  integrity: errors {len(errors)}, connections lost {lost}", flush=True)
    for error in errors[:5]:
        print(f"    error: {error}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=50, help="relay pairs (0: skip the relay)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--idle", type=int, default=2000, help="idle identified clients (0: skip)")
    parser.add_argument("--workers", type=int, default=4, help="load-generator processes for --idle")
    parser.add_argument("--connecting", type=int, default=2, help="--idle clients joining at a time, in all")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=["uvloop", "orjson"],
        help="A/B: run the servers with this optional 'fast' extra made unimportable",
    )
    parser.add_argument(
        "--space-size",
        type=int,
        default=0,
        help="--idle clients in spaces of this many, half on each instance (default 0: the open network)",
    )
    parser.add_argument(
        "--alive-ttl",
        type=float,
        help="seconds without a heartbeat before an instance is taken for dead (server default 3)",
    )
    parser.add_argument(
        "--server-dir",
        type=Path,
        default=REPO,
        help="run the servers from this checkout instead (A/B against another commit: git worktree add)",
    )
    args = parser.parse_args()
    if args.space_size and (args.space_size < 2 or args.space_size % 2):
        parser.error("--space-size must be even (half of each space joins each instance)")
    # A SIGTERM (timeout, a stopped job) unwinds like Ctrl+C: servers and redis-server stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    server_dir = args.server_dir.resolve()
    try:
        import uvloop  # noqa: F401

        client_loop = "uvloop"
    except ImportError:
        client_loop = "asyncio"
    # The servers inherit this limit and raise their own; the relay generator runs here.
    soft, hard = raise_nofile(args.idle + 4 * args.pairs + 1000)
    need = args.idle // 2 + 2 * args.pairs + 300
    if soft < need:
        print(
            f"warning: RLIMIT_NOFILE is {soft} (hard {hard}); each server needs about {need}", file=sys.stderr
        )
    settings = {**LOAD_SETTINGS, "MAX_CLIENTS": str(max(args.idle, 2 * args.pairs) + 100)}
    argv = server_argv(args.without, args.alive_ttl)
    print(
        f"{os.cpu_count()} cores shared by the servers, redis-server and the load generator "
        f"({client_loop}); servers: python -m server"
        + (f" without {', '.join(args.without)}" if args.without else "")
        + (f", instance liveness TTL {args.alive_ttl:g} s" if args.alive_ttl is not None else ""),
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="lan-call-cluster-") as tmp:
        work = Path(tmp)
        certs = work / "certs"
        redis = RedisServer(work)
        redis.start()
        assert redis.proc is not None
        procs: list[subprocess.Popen[bytes]] = []
        try:
            if args.pairs:
                port = free_port()
                procs.append(start_server(port, certs, work / "single.log", server_dir, argv, **settings))
                context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
                label = f"one instance, {args.pairs} pairs"
                print_relay(label, asyncio.run(relay([port], context, args.pairs, args.seconds)))
                stop_server(procs.pop())

                ports = [free_port(), free_port()]
                for i, p in enumerate(ports):
                    log = work / f"s{i}.log"
                    procs.append(
                        start_server(p, certs, log, server_dir, argv, REDIS_URL=redis.url, **settings)
                    )
                figures = asyncio.run(relay(ports, context, args.pairs, args.seconds))
                print_relay(f"two instances + Redis, {args.pairs} pairs", figures)
                for proc in procs:
                    stop_server(proc)
                procs.clear()

            if args.idle:
                ports = [free_port(), free_port()]
                for i, p in enumerate(ports):
                    log = work / f"m{i}.log"
                    procs.append(
                        start_server(p, certs, log, server_dir, argv, REDIS_URL=redis.url, **settings)
                    )
                pids = [proc.pid for proc in procs]
                loops = ["uvloop" if loaded(pid, "uvloop") else "asyncio" for pid in pids]
                print(
                    f"{args.idle} idle identified clients "
                    + (
                        f"in spaces of {args.space_size} "
                        if args.space_size
                        else "in the open network (one list) "
                    )
                    + f"over two instances (event loop {loops[0]}/{loops[1]}) on one redis-server, "
                    f"from {args.workers} load-generator processes:",
                    flush=True,
                )
                idle(
                    ports,
                    pids,
                    redis.proc.pid,
                    certs,
                    [work / "m0.log", work / "m1.log"],
                    args.idle,
                    args.workers,
                    args.connecting,
                    args.space_size,
                    client_loop,
                )
                # e.g. event=instance-lost: an instance took the other for dead (figures void)
                warnings = [
                    f"{name}: {line}"
                    for name in ("A", "B")
                    for line in (work / f"m{'AB'.index(name)}.log").read_text(errors="replace").splitlines()
                    if " WARNING " in line or " ERROR " in line
                ]
                print(f"  server warnings: {len(warnings)}", *warnings[:5], sep="\n    ", flush=True)
        except Exception:  # what the servers said is the likeliest explanation
            for log in sorted(work.glob("*.log")):
                lines = log.read_text(errors="replace").splitlines()
                if lines:
                    print(f"--- last lines of {log.name}:", *lines[-15:], sep="\n", file=sys.stderr)
            raise
        finally:
            for proc in procs:
                stop_server(proc)
            with contextlib.suppress(Exception):
                redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
