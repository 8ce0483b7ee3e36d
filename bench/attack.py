"""Attack benchmark for the /rtc signalling server (issue 9, "Attacks" 5; README "Security").

Starts the real server (`python -m server`, default settings except STATE_FILE= and
ECHO=0) on 127.0.0.1 with a throwaway local CA and connects bystanders from other
loopback addresses: a crowd of identified idle clients (127.0.0.2-5, at most 50 per
address, under the default 64 connections per address) and, on 127.0.0.6, a probe pair
relaying an `icecandidate` back and forth every 25 ms (one-way latency, sender and
receiver share the monotonic clock) plus a victim. Then, one after the other, for a few
seconds each, one attacker on 127.0.0.1 (every attacking socket shares that address,
which is what the per-address limits are for):

1. quiet: no attack, for reference;
2. rename storm: 10 sockets renaming as fast as they can (reconnecting when closed);
3. relay flood: 30 sockets relaying to the victim as fast as they can (reconnecting);
4. ping flood: one socket sending WebSocket pings as fast as it can (no reconnect);
5. oversized names: one socket renaming to a 64 KiB name 45 times a second;
6. join churn: 10 sockets connecting, identifying, leaving, as fast as they can (not
   part of issue 9's list; a join and a leave fan out to everyone, as a rename does).

For each it prints what the bystanders felt (`peer` frames/s counted at the crowd, probe
latency p50/p99), what the attack achieved (relays/s at the victim, pongs/s, close codes),
server CPU, how long the backlog took to drain, and how busy the machine was otherwise.
Attackers write prebuilt frames whenever their socket's write buffer has room, so the
attacker process stays cheaper than the server it attacks.

Before/after: `--server-dir` (repeatable) runs the same attacks against other checkouts in
one session and prints them side by side, e.g. against the commit before the limits:

    git worktree add --detach /tmp/lan-call-before 332edcb^
    .venv/bin/python bench/attack.py --server-dir /tmp/lan-call-before --server-dir .
    .venv/bin/python bench/attack.py --quick           # smoke run, this checkout only

Only loopback is ever contacted; every loop is bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.support, shared with the tests

from tests.support.benchproc import (  # noqa: E402
    cpu_seconds_of,
    machine_busy_seconds,
    percentile,
    raise_nofile,
    start_server,
    stop_server,
)
from tests.support.net import LOOPBACK, free_port  # noqa: E402
from tests.support.wsclient import OP_PING, OP_TEXT, Client, dumps, frame  # noqa: E402

SERVER_NAME = "localhost"  # a name the generated certificate covers
ATTACKER = "127.0.0.1"  # every attacking socket: one address
CROWD = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")  # idle bystanders
PER_CROWD_ADDRESS = 50  # under the default MAX_CONNECTIONS_PER_ADDRESS (64)
PROBE = "127.0.0.6"  # the probe pair and the victim
PROBE_PERIOD = 0.025  # s between probe sends: 40 messages/s per socket, under RATE_LIMIT (50)
NAME_FRAME_BYTES = 65_535  # the largest frame both old and new servers accept (old: < 65,536)
RESUME_GRACE = 20.0  # the server's default RESUME_GRACE, s
NAME_RATE = 45.0  # oversized names per second (issue 9's figure), under RATE_LIMIT
CHURN_OPEN = 50  # join-churn connections open at once, under MAX_CONNECTIONS_PER_ADDRESS (64)
CANDIDATE = "candidate:1 1 udp 2122260223 10.0.0.1 46243 typ host generation 0"


def tls_context(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)  # verifies: no checks turned off


async def connect(port: int, context: ssl.SSLContext, source: str, name: str | None) -> Client:
    """A /rtc socket from `source`, ready (and identified as `name`, if given)."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(
            lambda: Client(f"{SERVER_NAME}:{port}"),
            LOOPBACK,
            port,
            ssl=context,
            server_hostname=SERVER_NAME,
            local_addr=(source, 0),
        ),
        10,
    )
    await asyncio.wait_for(client.ready, 10)
    if name is not None:
        client.send_json({"type": "identify", "data": {"id": client.id, "name": name}})
    return client


def identify_frame(name: str) -> bytes:
    return frame(OP_TEXT, dumps({"type": "identify", "data": {"name": name}}))


def relay_frame(target: str, sent_ns: int = 0) -> bytes:
    candidate = {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0, "sentNs": sent_ns}
    return frame(OP_TEXT, dumps({"type": "icecandidate", "data": {"target": target, "candidate": candidate}}))


LEAVE = frame(OP_TEXT, dumps({"type": "leave", "data": {}}))


def monotonic_ns() -> int:
    return time.monotonic_ns()  # CLOCK_MONOTONIC: the same clock in every process


# --- bystanders (in their own processes) -----------------------------------------------------


class Crowd:
    """Idle identified clients; counts every `peer` frame they receive."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port, self.context = port, context
        self.clients: list[Client] = []

    async def join(self, count: int) -> None:
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with gate:
                source = CROWD[i // PER_CROWD_ADDRESS]
                self.clients.append(await connect(self.port, self.context, source, f"bystander {i}"))

        await asyncio.gather(*(one(i) for i in range(count)))
        deadline = time.monotonic() + 60
        while any(c.peers_seen < count - 1 for c in self.clients):  # every join announced
            if time.monotonic() > deadline:
                raise TimeoutError("the crowd's joins were not all announced within 60 s")
            await asyncio.sleep(0.05)

    def status(self) -> dict[str, Any]:
        return {
            "frames": sum(c.peer_frames for c in self.clients),
            "lost": sum(1 for c in self.clients if c.lost.done()),
            "errors": sum(len(c.errors) for c in self.clients),  # so far, e.g. rate-limited
        }


class Probe:
    """A pair relaying a candidate back and forth every PROBE_PERIOD (a sends, b answers),
    and the victim of the relay flood. Keeps every sample with its send time, so the
    orchestrator can ask for the samples sent within a phase."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port, self.context = port, context
        self.sent_ns = array("q")  # per sample received: when it was sent
        self.latency_ns = array("q")
        self.sends_ns = array("q")  # every send, received or not
        self.last_rx_ns = 0
        self.victim_rx = array("q")  # receive times of relays reaching the victim
        self.task: asyncio.Task[None] | None = None

    async def join(self) -> str:
        self.a = await connect(self.port, self.context, PROBE, "probe a")
        self.b = await connect(self.port, self.context, PROBE, "probe b")
        self.victim = await connect(self.port, self.context, PROBE, "victim")
        self.a.on_candidate = self._received(None)
        self.b.on_candidate = self._received(self.a)
        self.victim.on_candidate = lambda _data: self.victim_rx.append(monotonic_ns())
        await asyncio.sleep(0.5)  # identifies handled before anyone relays to them
        self.task = asyncio.create_task(self._pace())
        return self.victim.id

    def _received(self, answer_to: Client | None) -> Callable[[dict[str, Any]], None]:
        def received(data: dict[str, Any]) -> None:
            now = monotonic_ns()
            sent = int(data["candidate"]["sentNs"])
            self.sent_ns.append(sent)
            self.latency_ns.append(now - sent)
            self.last_rx_ns = now
            if answer_to is not None:
                self._send(self.b, answer_to)

        return received

    def _send(self, sender: Client, target: Client) -> None:
        now = monotonic_ns()
        self.sends_ns.append(now)
        sender.write_raw(relay_frame(target.id, now))

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:  # cancelled by the orchestrator's "bye"
            self._send(self.a, self.b)
            next_at += PROBE_PERIOD
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def window(self, t0: int, t1: int) -> dict[str, Any]:
        lat = sorted(lat for sent, lat in zip(self.sent_ns, self.latency_ns, strict=True) if t0 <= sent < t1)
        return {
            "p50": percentile(lat, 0.50),
            "p99": percentile(lat, 0.99),
            "samples": len(lat),
            "sent": sum(1 for t in self.sends_ns if t0 <= t < t1),
            "victim": sum(1 for t in self.victim_rx if t0 <= t < t1),
            "lost": sum(1 for c in (self.a, self.b, self.victim) if c.lost.done()),
            "errors": sum(len(c.errors) for c in (self.a, self.b, self.victim)),  # so far
        }

    def status(self) -> dict[str, Any]:
        """Whether the pair is back to normal: its latest message came back quickly, lately."""
        recent = bool(self.latency_ns) and monotonic_ns() - self.last_rx_ns < 3 * PROBE_PERIOD * 1e9
        return {"normal": recent and self.latency_ns[-1] < 50e6}


def bystander_main(pipe: Connection, role: str, port: int, ca: str, count: int) -> None:
    """A bystander process: answers the orchestrator's commands over `pipe`."""
    raise_nofile(count + 256)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        context = tls_context(ca)
        crowd, probe = Crowd(port, context), Probe(port, context)
        while True:
            command, *args = await loop.run_in_executor(None, pipe.recv)
            try:
                if command == "join":
                    reply: Any = await crowd.join(count) if role == "crowd" else await probe.join()
                elif command == "status":
                    reply = crowd.status() if role == "crowd" else probe.status()
                elif command == "window":
                    reply = probe.window(*args)
                else:
                    if probe.task is not None:
                        probe.task.cancel()
                    for c in [
                        *crowd.clients,
                        *(getattr(probe, n) for n in ("a", "b", "victim") if hasattr(probe, n)),
                    ]:
                        if c.transport:
                            c.transport.abort()
                    pipe.send("bye")
                    return
            except Exception as exc:  # reported by the orchestrator, which stops everything
                reply = f"error: {type(exc).__name__}: {exc}"
            pipe.send(reply)

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:  # pragma: no cover - the bench works without the 'fast' extra
        asyncio.run(serve())


def ask(pipe: Connection, command: tuple[Any, ...], timeout: float = 90) -> Any:
    pipe.send(command)
    if not pipe.poll(timeout):
        raise TimeoutError(f"a bystander process did not answer {command[0]!r} within {timeout:g} s")
    reply = pipe.recv()
    if isinstance(reply, str) and reply.startswith("error:"):
        raise RuntimeError(f"bystander process failed during {command[0]!r}: {reply}")
    return reply


# --- attackers (in the orchestrating process) ------------------------------------------------


@dataclass
class Attack:
    """What the attacking sockets saw."""

    sent: int = 0  # frames written
    connects: int = 0
    refused: int = 0  # connections that failed before `ready`
    closes: Counter[str] = field(default_factory=Counter)  # close code (or "aborted") -> count
    errors: Counter[str] = field(default_factory=Counter)  # error code -> count
    pongs: int = 0
    first_close: tuple[str, float] | None = None  # (code, seconds into the phase)


class Attacker:
    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port, self.context = port, context
        self.serial = 0

    async def open(self, attack: Attack, named: bool = True) -> Client | None:
        self.serial += 1
        try:
            client = await connect(
                self.port, self.context, ATTACKER, f"attacker {self.serial}" if named else None
            )
        except (OSError, TimeoutError, ssl.SSLError):
            attack.refused += 1
            await asyncio.sleep(0.05)
            return None
        attack.connects += 1
        client.on_error = lambda data: attack.errors.update([str(data.get("code"))])
        return client

    @staticmethod
    def closed(client: Client, attack: Attack, started: float) -> None:
        code = str(client.close_code) if client.close_code is not None else "aborted"
        attack.closes[code] += 1
        if attack.first_close is None:
            attack.first_close = (code, time.monotonic() - started)

    @staticmethod
    async def finish(client: Client, attack: Attack) -> None:
        attack.pongs += client.pongs
        if client.transport is not None and not client.lost.done():
            client.write_raw(LEAVE)  # gone from every list at once, not after the grace period
            client.transport.close()  # flushes what is buffered, then closes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(client.lost), 2)
            client.transport.abort()

    async def flood(
        self,
        sockets: int,
        seconds: float,
        batch: Callable[[Client, int], bytes],
        per_batch: int,
        reconnect: bool,
    ) -> Attack:
        """`sockets` sockets each writing `batch(client, i)` whenever their buffer has room;
        a closed socket is replaced (if `reconnect`) until `seconds` are up."""
        attack, started = Attack(), time.monotonic()
        deadline = started + seconds

        async def one(i: int) -> None:
            while time.monotonic() < deadline:
                client = await self.open(attack)
                if client is None:
                    continue
                data = batch(client, i)
                while not client.lost.done() and time.monotonic() < deadline:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            client.writable.wait(), max(0.001, deadline - time.monotonic())
                        )
                    if client.writable.is_set():
                        client.write_raw(data)
                        attack.sent += per_batch
                    await asyncio.sleep(0)
                if client.lost.done():
                    self.closed(client, attack, started)
                    attack.pongs += client.pongs
                    if reconnect:
                        continue
                    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                await self.finish(client, attack)

        await asyncio.gather(*(one(i) for i in range(sockets)))
        return attack

    async def rename_storm(self, seconds: float) -> Attack:
        def batch(client: Client, i: int) -> bytes:  # alternate two names: every one is a change
            return b"".join(identify_frame(f"renamer {i} {'ab'[k % 2]}") for k in range(64))

        return await self.flood(10, seconds, batch, 64, reconnect=True)

    async def relay_flood(self, seconds: float, victim: str) -> Attack:
        return await self.flood(30, seconds, lambda _c, _i: relay_frame(victim) * 64, 64, reconnect=True)

    async def ping_flood(self, seconds: float) -> Attack:
        ping = b"".join(frame(OP_PING, b"%08d" % k) for k in range(256))
        return await self.flood(1, seconds, lambda _c, _i: ping, 256, reconnect=False)

    async def oversized_names(self, seconds: float) -> Attack:
        overhead = len(dumps({"type": "identify", "data": {"name": ""}}))
        name_frame = identify_frame("N" * (NAME_FRAME_BYTES - overhead))
        attack, started = Attack(), time.monotonic()
        client = await self.open(attack)
        loop = asyncio.get_running_loop()
        next_at = loop.time() + 0.2  # after the normal identify
        while client is not None and time.monotonic() < started + seconds:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += 1 / NAME_RATE
            if client.lost.done():
                self.closed(client, attack, started)
                client = await self.open(attack)
                continue
            client.write_raw(name_frame)
            attack.sent += 1
        if client is not None:
            await self.finish(client, attack)
        return attack

    async def join_churn(self, seconds: float) -> Attack:
        """10 sockets at a time connect, identify and leave, without waiting for the close;
        at most CHURN_OPEN connections open at once (under the per-address cap)."""
        attack, started = Attack(), time.monotonic()
        deadline = started + seconds
        gate = asyncio.Semaphore(CHURN_OPEN)
        reaping: set[asyncio.Task[None]] = set()

        async def reap(client: Client) -> None:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(client.lost), 2)
                if client.transport is not None:
                    client.transport.abort()
            finally:
                gate.release()

        async def one() -> None:
            while time.monotonic() < deadline:
                await gate.acquire()
                client = await self.open(attack, named=False)
                if client is None or client.transport is None:
                    gate.release()
                    continue
                client.write_raw(identify_frame(f"churner {self.serial}") + LEAVE)
                attack.sent += 2
                client.transport.close()  # flushes, then closes; reaped in the background
                task = asyncio.create_task(reap(client))
                reaping.add(task)
                task.add_done_callback(reaping.discard)

        await asyncio.gather(*(one() for _ in range(10)))
        await asyncio.gather(*reaping)
        return attack


# --- one server, every phase -------------------------------------------------------------------


@dataclass
class Setup:
    port: int
    ca: str
    server_pid: int
    crowd: Connection
    probe: Connection
    helper_pids: list[int]
    victim: str = ""
    bystander_errors: int = 0  # error messages the bystanders got so far (rate-limited, ...)


def our_cpu(setup: Setup) -> float:
    return sum(cpu_seconds_of(pid) for pid in [os.getpid(), *setup.helper_pids])


async def drain(setup: Setup, limit: float) -> float:
    """Seconds until the bystanders stop receiving the attack's backlog (crowd frame count
    unchanged for 1 s, the probe pair's latency back under 50 ms), at most `limit`."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    last, stable_since = -1, started
    while time.monotonic() - started < limit:
        crowd = await loop.run_in_executor(None, ask, setup.crowd, ("status",))
        probe = await loop.run_in_executor(None, ask, setup.probe, ("status",))
        now = time.monotonic()
        if crowd["frames"] != last:
            last, stable_since = crowd["frames"], now
        elif now - stable_since >= 1.0 and probe["normal"]:
            return stable_since - started
        await asyncio.sleep(0.2)
    return float("inf")


async def run_phase(
    setup: Setup,
    name: str,
    seconds: float,
    attack: Callable[[], Awaitable[Attack | None]],
    drain_limit: float,
    settle: float,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    crowd0 = (await loop.run_in_executor(None, ask, setup.crowd, ("status",)))["frames"]
    cpu0, ours0, busy0 = cpu_seconds_of(setup.server_pid), our_cpu(setup), machine_busy_seconds()
    t0 = monotonic_ns()
    task = asyncio.create_task(attack())
    await asyncio.sleep(seconds)  # the attack's own deadline; its sockets close after it
    t1 = monotonic_ns()
    cpu1, ours1, busy1 = cpu_seconds_of(setup.server_pid), our_cpu(setup), machine_busy_seconds()
    crowd1 = await loop.run_in_executor(None, ask, setup.crowd, ("status",))
    elapsed = (t1 - t0) / 1e9
    result = await task
    drained = await drain(setup, drain_limit)
    # Attacking sockets closed without `leave` (by the server, or an old server that has no
    # `leave`) are announced gone after the resume grace: wait for that here, so those
    # frames are not counted against the next phase.
    await asyncio.sleep(max(0.0, settle - (monotonic_ns() - t1) / 1e9))
    probe = await loop.run_in_executor(None, ask, setup.probe, ("window", t0, t1))
    crowd_end = await loop.run_in_executor(None, ask, setup.crowd, ("status",))
    errors_so_far, setup.bystander_errors = setup.bystander_errors, crowd_end["errors"] + probe["errors"]
    figures: dict[str, Any] = {
        "phase": name,
        "seconds": elapsed,
        "crowd_frames_per_s": (crowd1["frames"] - crowd0) / elapsed,
        "p50_ms": probe["p50"],
        "p99_ms": probe["p99"],
        "probe_samples": probe["samples"],
        "probe_sent": probe["sent"],
        "victim_per_s": probe["victim"] / elapsed,
        "server_cpu": (cpu1 - cpu0) / elapsed,
        "bench_cpu": (ours1 - ours0) / elapsed,
        "other_cpu": max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - (ours1 - ours0)) / elapsed,
        "drain_s": drained,
        "bystanders_lost": crowd1["lost"] + probe["lost"],
        "bystander_errors": setup.bystander_errors - errors_so_far,
    }
    if result is not None:
        figures.update(
            sent_per_s=result.sent / elapsed,
            connects=result.connects,
            refused=result.refused,
            closes=dict(result.closes),
            errors=dict(result.errors),
            pongs_per_s=result.pongs / elapsed,
            first_close=result.first_close,
        )
    return figures


def describe(server_dir: Path) -> str:
    """The checkout's commit, marked when server/ has uncommitted changes."""
    git = ["git", "-C", str(server_dir)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "server"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return server_dir.name
    return commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def run_server(
    server_dir: Path, bystanders: int, seconds: float, drain_limit: float, settle: float
) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="lan-call-attack-"))
    port = free_port()
    # Default limits; no state file (a bench leaves nothing behind), no echo peer (its
    # CPU would blur the server's figures).
    server = start_server(port, tmp / "certs", tmp / "server.log", server_dir, STATE_FILE="", ECHO="0")
    print(
        f"server {describe(server_dir)} from {server_dir}: pid {server.pid} on {LOOPBACK}:{port}", flush=True
    )
    ca = str(tmp / "certs" / "ca.pem")
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    procs: list[Any] = []
    phases: list[dict[str, Any]] = []
    try:
        for role in ("crowd", "probe"):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=bystander_main, args=(child, role, port, ca, bystanders), daemon=True)
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        setup = Setup(port, ca, server.pid, pipes[0], pipes[1], [p.pid for p in procs])
        ask(setup.crowd, ("join",))
        setup.victim = ask(setup.probe, ("join",))
        time.sleep(1.0)
        print(f"  {bystanders} idle bystanders and the probe pair connected", flush=True)

        async def attacks() -> None:
            attacker = Attacker(port, tls_context(ca))

            async def quiet() -> None:
                await asyncio.sleep(seconds)

            plan: list[tuple[str, Callable[[], Awaitable[Attack | None]]]] = [
                ("quiet", quiet),
                ("rename storm", lambda: attacker.rename_storm(seconds)),
                ("relay flood", lambda: attacker.relay_flood(seconds, setup.victim)),
                ("ping flood", lambda: attacker.ping_flood(seconds)),
                ("oversized names", lambda: attacker.oversized_names(seconds)),
                ("join churn", lambda: attacker.join_churn(seconds)),
            ]
            for name, attack in plan:
                unsettled = name in ("quiet", plan[-1][0])  # nothing left behind, or nothing after
                phase = await run_phase(setup, name, seconds, attack, drain_limit, 0 if unsettled else settle)
                phases.append(phase)
                print(f"  {name:<16} {summary(phase)}", flush=True)

        try:
            import uvloop

            uvloop.run(attacks())
        except ImportError:  # pragma: no cover
            asyncio.run(attacks())
    finally:
        stop_server(server)
        for pipe in pipes:
            with contextlib.suppress(OSError, TimeoutError, RuntimeError):
                ask(pipe, ("bye",), 10)
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return phases


# --- consent probes (issue 18, findings 22, 24, 29): one try each, pass or fail --------------------

PROBE_ATTACKER = "127.0.0.7"
PROBE_VICTIMS = "127.0.0.8"
PROBE_RING = 1.0  # RING_TIMEOUT of the probe server, so a stale invitation is stale within seconds
PROBE_SLACK = 10.0  # the hub's RING_SLACK: how long past the ring an answer still counts


class ProbeClient:
    """One identified /rtc client from a given loopback address, keeping what it hears."""

    def __init__(self, ws: Any, ready: dict[str, Any]) -> None:
        self.ws, self.id = ws, ready["id"]
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def join(cls, session: Any, url: str, name: str) -> ProbeClient:
        ws = await session.ws_connect(url, server_hostname=SERVER_NAME)
        client = cls(ws, json.loads((await ws.receive(timeout=10)).data))
        await client.send({"type": "identify", "data": {"name": name, "caps": ["group", "data"]}})
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def hear(self, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds` (beyond peer-list changes)."""
        got: list[dict[str, Any]] = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                message = await self.ws.receive(timeout=left)
            except TimeoutError:
                break
            if message.type != 1:  # aiohttp.WSMsgType.TEXT
                break
            frame_ = json.loads(message.data)
            self.frames.append(frame_)
            if frame_["type"] != "peer":
                got.append(frame_)
        return got

    async def wait_for(self, kind: str, seconds: float = 5.0) -> dict[str, Any] | None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            for message in await self.hear(min(left, 0.2)):
                if message["type"] == kind:
                    return message
        return None


def codes(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["code"] for f in frames if f["type"] == "error"]


async def consent_probes(port: int, ca: str) -> list[tuple[str, bool, str]]:
    """Each consent attack once; returns (attack, held, what happened)."""
    import aiohttp

    url = f"wss://{LOOPBACK}:{port}/rtc"
    results: list[tuple[str, bool, str]] = []
    async with contextlib.AsyncExitStack() as stack:
        sessions = {}
        for source in (PROBE_ATTACKER, PROBE_VICTIMS):
            connector = aiohttp.TCPConnector(ssl=tls_context(ca), local_addr=(source, 0))
            sessions[source] = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        mallory = await ProbeClient.join(sessions[PROBE_ATTACKER], url, "Mallory")
        victim = await ProbeClient.join(sessions[PROBE_VICTIMS], url, "Victim")
        ann = await ProbeClient.join(sessions[PROBE_VICTIMS], url, "Ann")
        bob = await ProbeClient.join(sessions[PROBE_VICTIMS], url, "Bob")
        for client in (mallory, victim, ann, bob):
            await client.hear(0.3)

        # 22: an `accept` nobody offered.
        await mallory.send({"type": "accept", "data": {"type": "answer", "sdp": "v=0", "target": victim.id}})
        refused, heard = await mallory.hear(0.5), await victim.hear(0.5)
        held = codes(refused) == ["not-invited"] and not heard
        results.append(
            (
                "forced call (accept to an idle person)",
                held,
                f"attacker got {codes(refused)}, victim got {[f['type'] for f in heard]}",
            )
        )

        # 24: a join after the invitation stopped ringing, and one after it was withdrawn.
        await ann.send({"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": bob.id}})
        await bob.wait_for("offer")
        await bob.send({"type": "accept", "data": {"type": "answer", "sdp": "v=0", "target": ann.id}})
        call = await ann.wait_for("call")
        call_id = call["data"]["id"] if call else ""
        await ann.send({"type": "invite", "data": {"target": mallory.id, "call": call_id}})
        await mallory.wait_for("invite")
        await asyncio.sleep(PROBE_RING + PROBE_SLACK + 0.5)
        await mallory.send({"type": "join", "data": {"call": call_id}})
        late = await mallory.hear(0.5)
        held = codes(late) == ["not-invited"]
        results.append(
            (
                f"join {PROBE_RING + PROBE_SLACK + 0.5:g} s after the invitation",
                held,
                f"attacker got {codes(late)}",
            )
        )
        await ann.send({"type": "invite", "data": {"target": mallory.id, "call": call_id}})
        await mallory.wait_for("invite")
        await ann.send(
            {"type": "hangup", "data": {"target": mallory.id, "call": call_id, "reason": "cancelled"}}
        )
        told = await mallory.wait_for("hangup")
        await mallory.send({"type": "join", "data": {"call": call_id}})
        after = await mallory.hear(0.5)
        held = told is not None and codes(after) == ["not-invited"] and codes(await ann.hear(0.3)) == []
        results.append(
            (
                "join after the inviter withdrew it",
                held,
                f"withdrawal heard: {told is not None}, join: {codes(after)}",
            )
        )

        # 29: the echo squatted by an `accept`, then asked into a group call.
        echo = next(
            (
                f["data"]["id"]
                for f in victim.frames
                if f["type"] == "peer" and f["data"].get("kind") == "bot"
            ),
            None,
        )
        if echo is None:
            results.append(("echo squatting", False, "no echo peer listed"))
        else:
            await mallory.send({"type": "accept", "data": {"type": "answer", "sdp": "v=0", "target": echo}})
            squat = await mallory.hear(0.5)
            await ann.send({"type": "invite", "data": {"target": echo, "call": call_id}})
            joined = None
            end = time.monotonic() + 5
            while joined is None and time.monotonic() < end:
                for message in await ann.hear(0.2):
                    if message["type"] == "call" and echo in message["data"]["members"]:
                        joined = message
                    if message["type"] == "reject" and message["data"].get("source") == echo:
                        end = 0
            held = codes(squat) == ["not-invited"] and joined is not None
            results.append(
                (
                    "echo squatting, then a group invites it",
                    held,
                    f"squat: {codes(squat)}, echo joined: {joined is not None}",
                )
            )
    return results


def run_probes(server_dir: Path) -> list[tuple[str, bool, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="lan-call-probes-"))
    port = free_port()
    server = start_server(
        port, tmp / "certs", tmp / "server.log", server_dir, ECHO="1", RING_TIMEOUT=f"{PROBE_RING:g}"
    )
    try:
        return asyncio.run(consent_probes(port, str(tmp / "certs" / "ca.pem")))
    finally:
        stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)


RACE_LIMIT = 6  # MAX_CALL_SIZE of the two race servers
RACE_ROUNDS = 10
RACE_GUESTS = 4  # per instance: eight invitations for four places


async def cluster_race(ports: list[int], ca: str) -> tuple[bool, str]:
    """Issue 18, finding 26: two instances on one Redis; each round a call of two (Alice on
    A, Bob on B), then four invitations from each instance at once, and every guest joins
    right after, at once. Held if in no round anyone was told of a call past the limit and
    every member's last `call` frame lists the same people."""
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls_context(ca))) as session:
        urls = [f"wss://{LOOPBACK}:{port}/rtc" for port in ports]
        alice = await ProbeClient.join(session, urls[0], "Alice")
        bob = await ProbeClient.join(session, urls[1], "Bob")
        guests = [await ProbeClient.join(session, urls[i % 2], f"Guest {i}") for i in range(2 * RACE_GUESTS)]
        everyone = [alice, bob, *guests]
        await asyncio.gather(*(c.hear(1.0) for c in everyone))  # listed on both instances
        overfull = disagreed = stuck = 0
        largest = 0
        for _ in range(RACE_ROUNDS):
            await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": bob.id}})
            await bob.wait_for("offer")
            await bob.send({"type": "accept", "data": {"type": "answer", "sdp": "v=0", "target": alice.id}})
            call = await alice.wait_for("call")
            if call is None:  # the last round left someone in a call the server lost track of
                stuck += 1
                continue
            call_id = call["data"]["id"]
            await asyncio.gather(
                *(
                    (alice if i % 2 == 0 else bob).send(
                        {"type": "invite", "data": {"target": g.id, "call": call_id}}
                    )
                    for i, g in enumerate(guests)
                )
            )
            # Each guest joins as soon as its instance has its invitation (the attacker runs
            # them all, so it need not wait to hear it).
            await asyncio.gather(*(g.send({"type": "join", "data": {"call": call_id}}) for g in guests))
            await asyncio.gather(*(c.hear(1.5) for c in everyone))
            last: dict[str, list[str]] = {}
            for client in everyone:
                told = [
                    f["data"]["members"]
                    for f in client.frames
                    if f["type"] == "call" and f["data"]["id"] == call_id
                ]
                largest = max([largest, *(len(m) for m in told)])
                if told and told[-1]:
                    last[client.id] = told[-1]
            members = {tuple(m) for who, m in last.items() if who in m}
            overfull += any(len(m) > RACE_LIMIT for m in members)
            disagreed += len(members) > 1
            for client in everyone:
                await client.send({"type": "leave-call", "data": {"call": call_id}})
            await asyncio.gather(*(c.hear(0.5) for c in everyone))
            for client in everyone:
                client.frames.clear()
        what = (
            f"{RACE_ROUNDS} rounds: instances disagreed in {disagreed}, a call past {RACE_LIMIT} in "
            f"{overfull}, no new call possible in {stuck}; largest call anyone was told of: {largest}"
        )
        return overfull == 0 and disagreed == 0 and stuck == 0, what


def run_cluster_race(server_dir: Path) -> tuple[bool, str] | None:
    """None where redis-server is missing (the probe needs a real one)."""
    import aiohttp

    from tests.support.redisserver import RedisServer

    if shutil.which("redis-server") is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="lan-call-race-"))
    redis = RedisServer(tmp)
    redis.start()
    servers = []
    try:
        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            certs = tmp / "certs"  # one CA for both, so one client context trusts both
            servers.append(
                start_server(
                    port,
                    certs,
                    tmp / f"server{i}.log",
                    server_dir,
                    REDIS_URL=redis.url,
                    MAX_CALL_SIZE=str(RACE_LIMIT),
                    RING_TIMEOUT="30",
                )
            )
        try:
            return asyncio.run(cluster_race(ports, str(tmp / "certs" / "ca.pem")))
        except (OSError, aiohttp.ClientError) as exc:  # a server that closed a socket on us
            return False, f"the probe's clients were cut off: {exc!r}"[:200]
    finally:
        for server in servers:
            stop_server(server)
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# --- report --------------------------------------------------------------------------------------


def ms(value: float) -> str:
    if value != value:  # NaN: no sample came back within the phase
        return "none back"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def latency(p: dict[str, Any]) -> str:
    """Probe p50 / p99, and the share of its messages that never came back."""
    text = f"{ms(p['p50_ms'])} / {ms(p['p99_ms'])}"
    lost = p["probe_sent"] - p["probe_samples"]
    return text + (f", {lost / p['probe_sent']:.0%} lost" if lost > 0 and p["probe_sent"] else "")


def closed(phase: dict[str, Any]) -> str:
    first = phase.get("first_close")
    if not first:
        return "never closed"
    return f"closed {first[0]} after {first[1]:.1f} s"


def summary(p: dict[str, Any]) -> str:
    parts = [
        f"bystanders {p['crowd_frames_per_s']:,.0f} frames/s",
        f"p50 {ms(p['p50_ms'])} p99 {ms(p['p99_ms'])} ({p['probe_samples']}/{p['probe_sent']} back)",
        f"server CPU {p['server_cpu']:.0%}",
    ]
    if p["phase"] != "quiet":
        parts.append(f"attacker sent {p['sent_per_s']:,.0f}/s over {p['connects']} sockets")
        if p["closes"]:
            parts.append("closes " + ", ".join(f"{k}×{v}" for k, v in sorted(p["closes"].items())))
        if p["errors"]:
            parts.append("errors " + ", ".join(f"{k}×{v}" for k, v in sorted(p["errors"].items())))
    if p["phase"] == "relay flood":
        parts.append(f"victim got {p['victim_per_s']:,.0f} relays/s")
    if p["phase"] == "ping flood":
        parts.append(f"{p['pongs_per_s']:,.0f} pongs/s, {closed(p)}")
    drain = p["drain_s"]
    parts.append(f"drained in {drain:.1f} s" if drain != float("inf") else "still draining")
    parts.append(f"other load {p['other_cpu']:.0%}, bench {p['bench_cpu']:.0%} of a core")
    if p["bystanders_lost"] or p["bystander_errors"]:
        parts.append(
            f"BYSTANDERS: {p['bystanders_lost']} disconnected, {p['bystander_errors']} error messages"
        )
    return "; ".join(parts)


ROWS: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = [
    ("quiet", "bystander p50 / p99", latency),
    ("rename storm", "peer frames/s at bystanders", lambda p: f"{p['crowd_frames_per_s']:,.0f}"),
    ("rename storm", "bystander p50 / p99", latency),
    ("rename storm", "server CPU", lambda p: f"{p['server_cpu']:.0%}"),
    ("relay flood", "relays/s at the victim", lambda p: f"{p['victim_per_s']:,.0f}"),
    ("relay flood", "bystander p50 / p99", latency),
    ("relay flood", "server CPU", lambda p: f"{p['server_cpu']:.0%}"),
    ("ping flood", "pongs/s answered", lambda p: f"{p['pongs_per_s']:,.0f}"),
    ("ping flood", "closed", closed),
    ("ping flood", "server CPU", lambda p: f"{p['server_cpu']:.0%}"),
    ("oversized names", "server CPU", lambda p: f"{p['server_cpu']:.0%}"),
    ("oversized names", "bystander p50 / p99", latency),
    ("join churn", "peer frames/s at bystanders", lambda p: f"{p['crowd_frames_per_s']:,.0f}"),
    ("join churn", "bystander p50 / p99", latency),
    ("join churn", "server CPU", lambda p: f"{p['server_cpu']:.0%}"),
    ("(every phase)", "other processes' CPU, max", lambda p: ""),
]


def table(columns: list[tuple[str, list[dict[str, Any]]]]) -> list[str]:
    header = ["attack", "figure", *(label for label, _ in columns)]
    rows = []
    for phase, figure, fmt in ROWS:
        cells = []
        for _, phases in columns:
            if phase == "(every phase)":
                cells.append(f"{max(p['other_cpu'] for p in phases):.0%} of a core")
            else:
                cells.append(next((fmt(p) for p in phases if p["phase"] == phase), "-"))
        rows.append([phase, figure, *cells])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server-dir",
        type=Path,
        action="append",
        help="run the server from this checkout (repeat for a before/after table; default: this one)",
    )
    parser.add_argument("--bystanders", type=int, help="idle identified bystanders (default 200; --quick 50)")
    parser.add_argument("--seconds", type=float, help="seconds per phase (default 5; --quick 2)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    parser.add_argument("--probes", action="store_true", help="only the consent probes (one try each)")
    args = parser.parse_args(argv)
    dirs = [d.resolve() for d in (args.server_dir or [REPO])]
    failed = 0
    for server_dir in dirs:
        print(
            f"Consent probes against {describe(server_dir)} (RING_TIMEOUT={PROBE_RING:g}, ECHO=1):",
            flush=True,
        )
        for attack, held, what in run_probes(server_dir):
            failed += not held
            print(f"  {'held ' if held else 'BROKE'}  {attack:<44} {what}", flush=True)
        race = run_cluster_race(server_dir)
        if race is None:
            print("  skipped  membership race across instances   (redis-server is not installed)")
        else:
            failed += not race[0]
            print(f"  {'held ' if race[0] else 'BROKE'}  {'membership race across instances':<44} {race[1]}")
    if args.probes:
        return 1 if failed else 0
    bystanders = args.bystanders if args.bystanders is not None else (50 if args.quick else 200)
    if not 2 <= bystanders <= PER_CROWD_ADDRESS * len(CROWD):
        parser.error(f"--bystanders must be between 2 and {PER_CROWD_ADDRESS * len(CROWD)}")
    seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 5.0)
    drain_limit = 10.0 if args.quick else 30.0
    settle = 0.0 if args.quick else RESUME_GRACE + 5
    raise_nofile(bystanders + 512)  # the server inherits this limit

    busy0, t0 = machine_busy_seconds(), time.monotonic()
    time.sleep(1.0)
    background = (machine_busy_seconds() - busy0) / (time.monotonic() - t0)
    print(
        f"LAN Call attack benchmark: {os.cpu_count()} cores; before starting, other processes kept "
        f"{background:.0%} of a core busy",
        flush=True,
    )
    columns = []
    for server_dir in dirs:
        columns.append(
            (describe(server_dir), run_server(server_dir, bystanders, seconds, drain_limit, settle))
        )

    print()
    print("LAN Call attack benchmark")
    print(
        "  settings    server defaults (RATE_LIMIT 50, ADDRESS_RATE_LIMIT 200, RENAME_RATE 1, "
        "MAX_CONNECTIONS_PER_ADDRESS 64, ...) but STATE_FILE= ECHO=0 RELOAD=off"
    )
    print(
        f"  load        {bystanders} idle identified bystanders ({', '.join(CROWD)}) + a probe pair relaying "
        f"every {PROBE_PERIOD * 1000:g} ms ({PROBE}); attackers all on {ATTACKER}; {seconds:g} s per phase"
    )
    print(
        f"  machine     {os.cpu_count()} cores shared by the server, the attacker and 2 bystander processes; "
        f"other processes: {background:.0%} of a core before the run"
    )
    print()
    for line in table(columns):
        print("  " + line)
    worst = max(p["other_cpu"] for _, phases in columns for p in phases)
    if worst > 0.1:
        print(
            f"\n  WARNING     other processes used up to {worst:.0%} of a core during a phase: CPU shares"
            " and latencies are disturbed; frame and relay rates less so"
        )
    if args.json:
        print(json.dumps({label: phases for label, phases in columns}))
    lost = any(p["bystanders_lost"] for _, phases in columns for p in phases)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
