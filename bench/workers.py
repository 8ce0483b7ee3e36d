"""WORKERS=2 on one Redis (issue 14, item 1): how the kernel spreads connections over the
workers, how soon a killed worker's clients are back, how long its restart takes, and how
long SIGTERM takes to end everything.

    .venv/bin/python bench/workers.py [--clients 40] [--runs 3]

Each run starts `WORKERS=2 python -m server` on a fresh port (one redis-server for all
runs), connects and identifies `--clients` test clients on the one port, and reads from
/proc which worker holds each. After 1.5 s it sends `kill -9` to the worker holding more
of them; each of its clients reconnects at once with its resume token (a browser adds its
own reconnect delay on top) and counts as back when its `ready` carries its old id.
Printed per run: the spread, time from the kill until each victim is back (median, max),
where they landed, the restart as the parent logged it (exit to listening again), and
the time from SIGTERM to the parent's exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from server.banner import LISTENING_LINE  # noqa: E402
from tests.support.net import LOOPBACK, free_port  # noqa: E402
from tests.support.redisserver import RedisServer  # noqa: E402
from tests.support.rtcclient import RtcClient  # noqa: E402
from tests.support.servers import SERVER_ARGV, server_env  # noqa: E402
from tests.support.workerprocs import alive, children, holder  # noqa: E402


def wait_for(log: Path, pattern: str, proc: subprocess.Popen[bytes], within: float) -> re.Match[str]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        time.sleep(0.02)
    raise TimeoutError(f"{pattern!r} not in {log} within {within:g} s")


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(list(SERVER_ARGV), cwd=REPO, env=env, stdout=out, stderr=out)


async def one_run(work: Path, redis_url: str, clients: int) -> None:
    port = free_port()
    log = work / f"workers-{port}.log"
    env = server_env(
        WORKERS="2",
        REDIS_URL=redis_url,
        PORT=str(port),
        HOST=LOOPBACK,
        CERTS_DIR=str(work / "certs"),
        STATE_FILE="",
        RESUME_GRACE="10",
        MAX_CONNECTIONS_PER_ADDRESS="0",
        JOIN_RATE="0",
    )
    proc = start(env, log)
    try:
        await asyncio.to_thread(wait_for, log, re.escape(LISTENING_LINE), proc, 60)
        pids = children(proc.pid)
        context = ssl.create_default_context(cafile=str(work / "certs" / "ca.pem"))
        url = f"wss://localhost:{port}/rtc"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            connected = [await RtcClient.connect(http, url, f"C{i}") for i in range(clients)]
            held = {c.id: holder(c.ws.get_extra_info("sockname")[1], port, pids) for c in connected}
            spread = sorted((sum(1 for pid in held.values() if pid == p) for p in pids), reverse=True)
            await asyncio.sleep(1.5)  # past the parent's "failed at start" window

            victim = max(pids, key=lambda p: sum(1 for pid in held.values() if pid == p))
            index = re.search(rf"worker=(\d+) pid={victim} ", log.read_text())
            assert index is not None
            moved = [c for c in connected if held[c.id] == victim]
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)

            async def back(client: RtcClient) -> tuple[float, bool]:
                await client.closed(5)
                again = await RtcClient.connect(http, f"{url}?resume={client.token}")
                assert again.id == client.id, "resumed with another id"
                landed = holder(again.ws.get_extra_info("sockname")[1], port, children(proc.pid))
                on_survivor = landed in pids
                return (time.monotonic() - killed) * 1000, on_survivor

            results = await asyncio.gather(*(back(c) for c in moved))
            times = sorted(ms for ms, _ in results)
            restarted = await asyncio.to_thread(
                wait_for,
                log,
                rf"worker-restarted worker={index.group(1)} pid=\d+ ms=(\d+) since_exit_ms=(\d+)",
                proc,
                30,
            )
            running = children(proc.pid)
            stopping = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 15)
            stop_ms = (time.monotonic() - stopping) * 1000
        print(
            f"spread {spread[0]}/{spread[1]} of {clients}; kill -9 of the worker with {len(moved)}: "
            f"back in median {statistics.median(times):.0f} ms, max {times[-1]:.0f} ms "
            f"({sum(1 for _, s in results if s)} on the surviving worker); restart: listening again "
            f"{restarted.group(2)} ms after the exit (start {restarted.group(1)} ms); "
            f"SIGTERM -> exit {code} in {stop_ms:.0f} ms, workers left {sum(alive(p) for p in running)}",
            flush=True,
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        work = Path(tmp)
        redis = RedisServer(work)
        redis.start()
        try:
            for _ in range(args.runs):
                await one_run(work, redis.url, args.clients)
        finally:
            redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
