"""TLS join/leave churn soak (issue 18, finding 30): does the server give memory back?

Starts the real server (`python -m server`, STATE_FILE= ECHO=0) on 127.0.0.1, then runs
`--cycles` cycles: `--clients` sockets from as many loopback addresses (127.0.1.1, ...)
connect over TLS, identify, leave, and close; then the bench waits until the server lists
nobody and prints its RSS. A server whose memory is returned shows a flat line after the
first cycle or two; one that keeps it climbs cycle after cycle.

    .venv/bin/python bench/soak.py                      # 10 cycles of 250 clients
    .venv/bin/python bench/soak.py --server-dir /tmp/before --server-dir .   # before/after

Only loopback is contacted; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.support, shared with the tests

from bench.attack import SERVER_NAME, connect  # noqa: E402  (the same client as the attack bench)
from tests.support.benchproc import rss_kib, start_server, stop_server  # noqa: E402
from tests.support.net import LOOPBACK, free_port  # noqa: E402


def address(index: int) -> str:
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


async def one_client(port: int, context: ssl.SSLContext, index: int) -> None:
    client = await connect(port, context, address(index), f"Soak {index}")
    await asyncio.sleep(0.2)
    client.send_json({"type": "leave", "data": {}})
    await asyncio.wait_for(asyncio.shield(client.lost), 10)


async def healthz_peers(port: int, context: ssl.SSLContext) -> int:
    reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=context, server_hostname=SERVER_NAME)
    writer.write(f"GET /healthz HTTP/1.1\r\nHost: {SERVER_NAME}:{port}\r\nConnection: close\r\n\r\n".encode())
    body = (await asyncio.wait_for(reader.read(), 10)).split(b"\r\n\r\n", 1)[1]
    writer.close()
    return int(json.loads(body)["peers"])


async def soak(port: int, ca: str, pid: int, clients: int, cycles: int) -> list[int]:
    context = ssl.create_default_context(cafile=ca)
    gate = asyncio.Semaphore(50)  # joins in flight at once

    async def gated(index: int) -> None:
        async with gate:
            await one_client(port, context, index)

    figures = [rss_kib(pid)]
    print(f"  before      RSS {figures[0] / 1024:6.1f} MiB", flush=True)
    for cycle in range(1, cycles + 1):
        started = time.monotonic()
        await asyncio.gather(*(gated(i) for i in range(clients)))
        for _ in range(150):  # until the server lists nobody (30 s at most)
            if not await healthz_peers(port, context):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # the liveness sweep and the expiry task run once a second
        figures.append(rss_kib(pid))
        print(
            f"  cycle {cycle:>2}    RSS {figures[-1] / 1024:6.1f} MiB   ({clients} joined and left in "
            f"{time.monotonic() - started:.1f} s)",
            flush=True,
        )
    return figures


def run(server_dir: Path, clients: int, cycles: int) -> list[int]:
    tmp = Path(tempfile.mkdtemp(prefix="lan-call-soak-"))
    port = free_port()
    server = start_server(
        port, tmp / "certs", tmp / "server.log", server_dir, ECHO="0", JOIN_RATE="0", MAX_CLIENTS="2000"
    )
    try:
        return asyncio.run(soak(port, str(tmp / "certs" / "ca.pem"), server.pid, clients, cycles))
    finally:
        stop_server(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=250, help="clients per cycle, one address each")
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--server-dir", type=Path, action="append", help="checkout to run (repeatable)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 1000 or not 1 <= args.cycles <= 100:
        parser.error("--clients 1-1000, --cycles 1-100")
    results = {}
    for server_dir in [d.resolve() for d in (args.server_dir or [REPO])]:
        print(f"server from {server_dir}: {args.cycles} cycles of {args.clients} TLS clients", flush=True)
        results[server_dir] = run(server_dir, args.clients, args.cycles)
    print()
    for server_dir, figures in results.items():
        after = figures[2:] or figures[1:]
        growth = (after[-1] - after[0]) / 1024 if len(after) > 1 else 0.0
        print(
            f"{server_dir}: RSS {figures[0] / 1024:.1f} MiB at start, {figures[1] / 1024:.1f} after cycle 1, "
            f"{figures[-1] / 1024:.1f} after cycle {len(figures) - 1}; from cycle 2 on {growth:+.1f} MiB "
            f"(median {statistics.median(after) / 1024:.1f}, highest {max(after) / 1024:.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
