"""`python -m server` as a subprocess, the way a user runs it: environment, start until the
banner, signals, and runs that must end by themselves (a user error exits with a message)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from server.config import PROJECT_ROOT

BANNER_END = "Press Ctrl+C to stop."  # the banner's last line: the server is listening
SERVER_ARGV = (sys.executable, "-m", "server")


def server_env(**settings: str) -> dict[str, str]:
    """This process's environment plus `settings`; no file watching or echo peer unless asked."""
    env = dict(os.environ)
    env.update(RELOAD="off", ECHO="0", PYTHONUNBUFFERED="1")
    env.update(settings)
    return env


def run_to_exit(
    env: dict[str, str], cwd: Path = PROJECT_ROOT, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run the server expecting it to stop by itself (a user error); output is captured."""
    return subprocess.run(
        list(SERVER_ARGV), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


async def stop_process(
    proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM, within: float = 5
) -> tuple[int, float]:
    """Send `sig`; return the exit code and how long the exit took."""
    began = time.monotonic()
    proc.send_signal(sig)
    code = await asyncio.wait_for(proc.wait(), within)
    return code, time.monotonic() - began


class ServerProcess:
    """The server in its own process with stdout and stderr read together, line by line."""

    def __init__(self, env: dict[str, str], cwd: Path = PROJECT_ROOT, new_session: bool = False) -> None:
        self.env = env
        self.cwd = cwd
        self.new_session = new_session  # its own process group, as in a terminal
        self.proc: asyncio.subprocess.Process | None = None
        self.output = ""

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *SERVER_ARGV,
            cwd=self.cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=self.new_session,
        )

    async def wait_for_banner(self, count: int = 1, within: float = 20) -> None:
        """Read output until the server has printed its banner `count` times in all."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + within
        while self.output.count(BANNER_END) < count:
            line = await asyncio.wait_for(self.proc.stdout.readline(), max(0.1, deadline - time.monotonic()))
            if not line:
                raise AssertionError(f"server exited early:\n{self.output}")
            self.output += line.decode()

    async def read_rest(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        self.output += (await self.proc.stdout.read()).decode()
        return self.output

    async def stop(self, sig: int = signal.SIGTERM, within: float = 5) -> tuple[int, float]:
        assert self.proc is not None
        return await stop_process(self.proc, sig, within)

    async def kill(self) -> None:
        """SIGKILL the server (and its process group, if it has its own) unless it has exited."""
        if self.proc is not None and self.proc.returncode is None:
            if self.new_session:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
            await self.proc.wait()
