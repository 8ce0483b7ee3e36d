"""Loopback ports: pick a free one, see whether one is closed, wait until one accepts."""

from __future__ import annotations

import socket
import subprocess
import time

LOOPBACK = "127.0.0.1"  # the only address tests and benchmarks ever talk to


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago (the OS picks it; a race with others is unlikely)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_closed(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def wait_for_port(
    port: int, within: float, proc: subprocess.Popen[bytes] | None = None, host: str = LOOPBACK
) -> None:
    """Block until `host:port` accepts a TCP connection; fail early if `proc` exits first."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on {host}:{port} within {within:g} s")
