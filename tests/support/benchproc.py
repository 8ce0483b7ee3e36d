"""The server under a benchmark: `python -m server` started from any checkout on loopback
with a throwaway CA, stopped, and what /proc says about it and about the machine.

`start_server` runs the server from `server_dir` (its working directory decides which
`server` package is imported), so a benchmark can run another checkout (a `git worktree`
of an older commit) in the same harness for before/after figures.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from server.config import PROJECT_ROOT

from .net import LOOPBACK, wait_for_port
from .servers import SERVER_ARGV, server_env


def start_server(
    port: int,
    certs: Path,
    log: Path,
    server_dir: Path = PROJECT_ROOT,
    argv: Sequence[str] = SERVER_ARGV,
    **settings: str,
) -> subprocess.Popen[bytes]:
    """Start the server on LOOPBACK:`port` (no state file, no echo peer, no reload) with
    `settings` on top, output to `log`; return once it accepts connections."""
    env = server_env(
        **{"PORT": str(port), "HOST": LOOPBACK, "CERTS_DIR": str(certs), "STATE_FILE": "", **settings}
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), cwd=server_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, within=60, proc=proc, host=LOOPBACK)
    except RuntimeError as error:
        raise RuntimeError(f"{error}:\n{log.read_text()[-2000:]}") from None
    except TimeoutError:
        proc.kill()
        raise
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def raise_nofile(needed: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat), to spot other load."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def loaded(pid: int, module: str) -> bool:
    """Whether process `pid` has `module`'s extension mapped (i.e. imported it)."""
    return f"/{module}/" in Path(f"/proc/{pid}/maps").read_text()


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """The `q` quantile of sorted nanosecond values, in milliseconds (NaN if none)."""
    if not sorted_ns:
        return float("nan")
    index = min(len(sorted_ns) - 1, max(0, round(q * (len(sorted_ns) - 1))))
    return sorted_ns[index] / 1e6
