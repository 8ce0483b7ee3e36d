"""A throwaway `redis-server` on a free loopback port in a temporary directory, for the
REDIS_URL tests and bench/cluster.py. No persistence, so a restart loses everything, as
the hardest real outage would."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .net import LOOPBACK, free_port, wait_for_port

MISSING = (
    "redis-server is not installed, and the REDIS_URL tests need a real one: run scripts/setup "
    "--browser (it installs Debian's redis-server) or `apt-get install redis-server`"
)


class RedisServer:
    def __init__(self, directory: Path, port: int = 0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(MISSING)
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.directory), "--daemonize", "no", "--loglevel", "warning"]
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(argv, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, within=10, proc=self.proc, host=LOOPBACK)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
