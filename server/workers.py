"""WORKERS=N: N server processes on one machine share one port and, through REDIS_URL, one
presence (docs/architecture.md, "Several instances").

`python -m server` with WORKERS > 1 becomes this module's parent. It does what must happen
once: the checks (Linux, REDIS_URL set and reachable, the port free), the certificates,
and the banner. It then starts N workers, `python -m server --worker I`: each is a
complete server that binds HOST:PORT with SO_REUSEPORT (the kernel spreads new
connections over the workers' listening sockets) and joins the others through Redis
(server/cluster.py), so a client may land on any worker and resume on any other. Worker 0
alone runs the echo peer (app.py); no worker keeps a STATE_FILE (presence lives in Redis).

Supervision: a worker that exits is started again after a short backoff (one log line:
which worker, how it ended). One that fails START_FAILURES times in a row before serving
(or within STABLE_SECONDS of it) makes the parent stop the others and exit with code 2
instead of spinning. SIGINT/SIGTERM are forwarded to every worker, which closes its
sockets with 1001 as a single server does; the parent exits 0 once they have exited,
killing whatever is left after STOP_SECONDS. Workers also end with the parent when it is
killed outright (PR_SET_PDEATHSIG, below).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import FrameType

from .appkeys import Site
from .banner import LISTENING_LINE, banner
from .config import ReloadMode, Settings, SettingsError
from .supervisor import check_port

log = logging.getLogger("server.workers")

WORKER_FLAG = "--worker"
RESTART_DELAYS = (0.1, 0.25, 0.5, 1.0)  # seconds before a restart, by failures in a row
START_FAILURES = 5  # exits in a row before serving (or soon after) that end the parent
STABLE_SECONDS = 1.0  # a worker serving this long before it exits did not fail at start
STOP_SECONDS = 5.0  # a worker's own shutdown is bounded at ~2 s (__main__.SHUTDOWN_BUDGET)
POLL_SECONDS = 0.05  # how often exits and pending restarts are looked at
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

Prepare = Callable[[Settings], tuple[Site, object, object]]  # __main__.prepare


def check_supported(settings: Settings) -> None:
    """Raise SettingsError unless WORKERS > 1 can work here with these settings."""
    n = settings.workers
    # Only Linux spreads the connections of one port over every SO_REUSEPORT socket
    # (macOS gives them all to one; FreeBSD needs SO_REUSEPORT_LB), and only Linux has
    # PR_SET_PDEATHSIG.
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        raise SettingsError(
            f"WORKERS={n} needs Linux (SO_REUSEPORT spreading connections over the workers); set "
            "WORKERS=1, or run one instance per port with REDIS_URL behind a load balancer"
        )
    if settings.redis_url is None:
        raise SettingsError(
            f"WORKERS={n} needs REDIS_URL (the workers share who is online through Redis); set "
            "REDIS_URL=redis://127.0.0.1:6379/0 with a redis-server running there, or set WORKERS=1"
        )
    if settings.reload is ReloadMode.SERVER:
        raise SettingsError(
            f"WORKERS={n} cannot be used with RELOAD=server (it restarts one process); set "
            "RELOAD=assets or WORKERS=1"
        )


def worker_settings(settings: Settings, argv: Sequence[str]) -> Settings:
    """The settings of worker I (`--worker I` from the parent); SettingsError for other arguments."""
    index = argv[1] if len(argv) == 2 and argv[0] == WORKER_FLAG else ""
    if not index.isdigit() or int(index) >= settings.workers:
        raise SettingsError(
            f"unexpected arguments {' '.join(argv)!r}; python -m server takes no arguments, set its "
            "settings as environment variables (README, Settings)"
        )
    return replace(settings, worker=int(index), state_file=None)


def describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _die_with_parent() -> Callable[[], None]:
    """A Popen `preexec_fn` making the worker get SIGTERM when this process dies, however
    it dies (kill -9 included): no orphan keeps the port. Chosen over the worker polling
    getppid() because the kernel delivers it at once, it needs no timer or thread in the
    worker, it covers the worker's whole life from fork on (it survives exec), and SIGTERM
    takes the worker's normal way out (sockets closed with 1001, Redis told). The getppid
    check closes the one gap: the parent dying between fork and prctl."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:
            os._exit(1)

    return preexec


@dataclass(eq=False, slots=True)
class Worker:
    """One running worker process, as the parent sees it."""

    index: int
    proc: subprocess.Popen[bytes]
    started: float
    exited_at: float | None  # when the worker this one replaces exited
    ready_at: float | None = None
    output: bytes = b""  # its stdout until the banner's last line


class GiveUp(Exception):
    """A worker keeps failing at start; the message says which and how."""


class Supervisor:
    """The parent's loop: starts, watches and restarts the workers, and stops them."""

    def __init__(self, settings: Settings) -> None:
        self.count = settings.workers
        self.command = [sys.executable, "-m", "server"]
        self.workers: list[Worker | None] = [None] * self.count
        self.failures = [0] * self.count  # early exits in a row, per worker
        self.restart_at: dict[int, tuple[float, float]] = {}  # index -> (when, exited at)
        self.selector = selectors.DefaultSelector()
        self.stop_signal: int | None = None
        self.began = time.monotonic()
        self._preexec = _die_with_parent()

    # --- running -----------------------------------------------------------------------

    def run(self, on_ready: Callable[[], None]) -> None:
        """Start every worker, call `on_ready` once all serve, keep them running until a
        signal; GiveUp when one keeps failing at start."""
        for index in range(self.count):
            self._start(index, None)
        announced = False
        while self.stop_signal is None:
            self._read_output(POLL_SECONDS)
            now = time.monotonic()
            for worker in self.workers:
                if worker is not None and worker.proc.poll() is not None:
                    self._exited(worker, now)
            for index, (when, exited_at) in list(self.restart_at.items()):
                if now >= when:
                    del self.restart_at[index]
                    self._start(index, exited_at)
            if not announced and all(w is not None and w.ready_at is not None for w in self.workers):
                log.info("event=workers-ready workers=%d ms=%d", self.count, (now - self.began) * 1000)
                on_ready()
                announced = True

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` to every worker and wait for them, at most STOP_SECONDS; kill the rest."""
        self.restart_at.clear()
        live = [w for w in self.workers if w is not None and w.proc.poll() is None]
        for worker in live:
            worker.proc.send_signal(sig)
        deadline = time.monotonic() + STOP_SECONDS
        while any(w.proc.poll() is None for w in live) and time.monotonic() < deadline:
            self._read_output(POLL_SECONDS)
        stuck = [w for w in live if w.proc.poll() is None]
        for worker in stuck:
            worker.proc.kill()
            worker.proc.wait()
        for left in live:
            self._forget(left)
        log.info("event=workers-stopped workers=%d killed=%d", len(live), len(stuck))

    # --- one worker ----------------------------------------------------------------------

    def _start(self, index: int, exited_at: float | None) -> None:
        proc = subprocess.Popen(
            [*self.command, WORKER_FLAG, str(index)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # only its banner: read here for readiness, not shown
            preexec_fn=self._preexec,  # safe: this process runs no other threads
        )
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        worker = Worker(index, proc, time.monotonic(), exited_at)
        self.workers[index] = worker
        self.selector.register(proc.stdout, selectors.EVENT_READ, worker)

    def _read_output(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            worker: Worker = key.data
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self.selector.unregister(key.fileobj)
                continue
            if worker.ready_at is None:
                worker.output += chunk
                if LISTENING_LINE.encode() in worker.output:
                    self._ready(worker)

    def _ready(self, worker: Worker) -> None:
        worker.ready_at = now = time.monotonic()
        worker.output = b""
        if worker.exited_at is None:
            log.info(
                "event=worker-ready worker=%d pid=%d ms=%d",
                worker.index,
                worker.proc.pid,
                (now - worker.started) * 1000,
            )
        else:
            log.info(
                "event=worker-restarted worker=%d pid=%d ms=%d since_exit_ms=%d",
                worker.index,
                worker.proc.pid,
                (now - worker.started) * 1000,
                (now - worker.exited_at) * 1000,
            )

    def _exited(self, worker: Worker, now: float) -> None:
        self._forget(worker)
        self.workers[worker.index] = None
        status = describe(worker.proc.returncode)
        early = worker.ready_at is None or now - worker.ready_at < STABLE_SECONDS
        failures = self.failures[worker.index] = self.failures[worker.index] + 1 if early else 0
        if failures >= START_FAILURES:
            raise GiveUp(
                f"worker {worker.index} stopped {failures} times in a row as it started (last: {status}); "
                "its own message is above: fix that and start again"
            )
        delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
        log.warning(
            "event=worker-exited worker=%d pid=%d status=%r restart_in_ms=%d",
            worker.index,
            worker.proc.pid,
            status,
            delay * 1000,
        )
        self.restart_at[worker.index] = (now + delay, now)

    def _forget(self, worker: Worker) -> None:
        stdout = worker.proc.stdout
        assert stdout is not None
        if not stdout.closed:
            if stdout in self.selector.get_map():
                self.selector.unregister(stdout)
            stdout.close()


def supervise(settings: Settings, prepare: Prepare) -> int:
    """The parent of WORKERS processes: returns 0 after SIGINT/SIGTERM; raises
    SettingsError (one line, exit code 2) for what stops it from starting or keeps a
    worker from starting."""
    check_supported(settings)
    check_port(settings.host, settings.port)
    assert settings.redis_url is not None
    from .cluster import check_reachable  # only here: one instance never imports redis

    asyncio.run(check_reachable(settings.redis_url))
    site = prepare(settings)[0]  # the certificates, once, before any worker reads them

    supervisor = Supervisor(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, supervisor.on_signal)
    log.info("event=workers-starting workers=%d port=%d", settings.workers, settings.port)
    try:
        supervisor.run(lambda: print(banner(site.urls, site.ca_file, qr=True), flush=True))
    except GiveUp as exc:
        supervisor.stop()
        raise SettingsError(str(exc)) from None
    except BaseException:
        supervisor.stop()
        raise
    supervisor.stop(supervisor.stop_signal or signal.SIGTERM)
    return 0
