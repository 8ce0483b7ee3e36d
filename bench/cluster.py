"""Several instances on one Redis (issue 14): relay throughput and latency across
instances next to one instance, and memory per idle identified socket.

    .venv/bin/python bench/cluster.py [--pairs 50] [--seconds 8] [--idle 2000]

1. **Relay**: `--pairs` pairs of browser-like clients (tests/support/wsclient.py) bounce
   one `icecandidate` back and forth as fast as the server answers (a closed loop), first
   with both ends on one instance (no REDIS_URL), then with the two ends of every pair on
   two instances sharing one redis-server. Prints messages/s and p50/p99 latency.
2. **Memory**: `--idle` clients connect and identify, spread evenly over the two
   instances; RSS growth of both servers together (and of redis-server) per client. Each
   instance also keeps a mirror of every peer the other holds, so that is included.

Everything runs on this machine: the load generator, the servers and redis-server share
its cores (the relay figures are therefore a comparison, not a capacity).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.benchproc import percentile, raise_nofile, rss_kib, start_server, stop_server  # noqa: E402
from tests.support.net import LOOPBACK, free_port  # noqa: E402
from tests.support.redisserver import RedisServer  # noqa: E402
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
    "MAX_CLIENTS": "20000",
    "LOG_LEVEL": "WARNING",
}


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


async def connect(port: int, context: ssl.SSLContext, name: str, gate: asyncio.Semaphore) -> Client:
    loop = asyncio.get_running_loop()
    async with gate:
        _, client = await loop.create_connection(
            lambda: Client(f"{SERVER_NAME}:{port}"), LOOPBACK, port, ssl=context, server_hostname=SERVER_NAME
        )
        await asyncio.wait_for(client.ready, 60)
    client.send_json({"type": "identify", "data": {"id": client.id, "name": name}})
    return client


async def settle(clients: list[Client], total: int, limit: float) -> None:
    """Every client has seen every other one announced (so every instance mirrors all)."""
    deadline = time.monotonic() + limit
    while any(c.peers_seen < total - 1 for c in clients):
        if time.monotonic() > deadline:
            short = sum(1 for c in clients if c.peers_seen < total - 1)
            raise TimeoutError(f"{short} clients still waiting for announcements")
        await asyncio.sleep(0.1)


async def relay(ports: list[int], context: ssl.SSLContext, pairs: int, seconds: float) -> dict[str, float]:
    gate = asyncio.Semaphore(50)
    ends = await asyncio.gather(
        *(
            connect(ports[i % 2 if len(ports) > 1 else 0], context, f"{i // 2} {i % 2}", gate)
            for i in range(2 * pairs)
        )
    )
    await settle(list(ends), 2 * pairs, 60)
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


async def idle(
    ports: list[int], pids: list[int], redis_pid: int, context: ssl.SSLContext, count: int
) -> dict[str, float]:
    await asyncio.sleep(1.0)
    before = [rss_kib(pid) for pid in pids]
    redis_before = rss_kib(redis_pid)
    gate = asyncio.Semaphore(50)
    clients = await asyncio.gather(
        *(connect(ports[i % len(ports)], context, f"idle {i}", gate) for i in range(count))
    )
    await settle(list(clients), count, 600)
    await asyncio.sleep(2.0)
    after = [rss_kib(pid) for pid in pids]
    redis_after = rss_kib(redis_pid)
    errors = sum(len(c.errors) for c in clients)
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    grown = sum(after) - sum(before)
    return {
        "servers_kib_per_client": grown / count,
        "per_instance_rss_mib": [round(kib / 1024, 1) for kib in after],  # type: ignore[dict-item]
        "redis_kib_per_client": (redis_after - redis_before) / count,
        "errors": errors,
    }


def print_relay(label: str, figures: dict[str, float]) -> None:
    print(
        f"{label:<34} {figures['msgs_per_s']:>9,.0f} msg/s   p50 {figures['p50_ms']:6.2f} ms   "
        f"p99 {figures['p99_ms']:6.2f} ms   misrouted {figures['misrouted']:.0f}   "
        f"errors {figures['errors']:.0f}",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--idle", type=int, default=2000, help="idle identified clients (0: skip)")
    args = parser.parse_args()
    raise_nofile(2 * args.idle + 4 * args.pairs + 1000)
    with tempfile.TemporaryDirectory(prefix="lan-call-cluster-") as tmp:
        work = Path(tmp)
        certs = work / "certs"
        redis = RedisServer(work)
        redis.start()
        assert redis.proc is not None
        procs = []
        try:
            port = free_port()
            procs.append(start_server(port, certs, work / "single.log", **LOAD_SETTINGS))
            context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
            print_relay(
                f"one instance, {args.pairs} pairs", await relay([port], context, args.pairs, args.seconds)
            )
            stop_server(procs.pop())

            ports = [free_port(), free_port()]
            for i, p in enumerate(ports):
                procs.append(start_server(p, certs, work / f"s{i}.log", REDIS_URL=redis.url, **LOAD_SETTINGS))
            figures = await relay(ports, context, args.pairs, args.seconds)
            print_relay(f"two instances + Redis, {args.pairs} pairs", figures)
            for p in procs:
                stop_server(p)
            procs.clear()

            if args.idle:
                for i, p in enumerate(ports):
                    procs.append(
                        start_server(p, certs, work / f"m{i}.log", REDIS_URL=redis.url, **LOAD_SETTINGS)
                    )
                memory = await idle(ports, [p.pid for p in procs], redis.proc.pid, context, args.idle)
                print(
                    f"{args.idle} idle identified clients over two instances: "
                    f"{memory['servers_kib_per_client']:.1f} KiB RSS per client (both servers together; "
                    f"each also mirrors the other's peers), servers at {memory['per_instance_rss_mib']} MiB, "
                    f"redis-server {memory['redis_kib_per_client']:.2f} KiB per client, "
                    f"errors {memory['errors']:.0f}",
                    flush=True,
                )
        finally:
            for p in procs:
                stop_server(p)
            with contextlib.suppress(Exception):
                redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
