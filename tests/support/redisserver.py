"""A throwaway `redis-server` on a free loopback port in a temporary directory, for the
REDIS_URL tests and bench/cluster.py. No persistence, so a restart loses everything, as
the hardest real outage would."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import trustme

from .net import LOOPBACK, free_port, wait_for_port

MISSING = (
    "redis-server is not installed, and the REDIS_URL tests need a real one: run scripts/setup "
    "--browser (it installs Debian's redis-server) or `apt-get install redis-server`"
)


class RedisServer:
    """`password`: AUTH required (`requirepass`); `tls`: TLS only, with a throwaway CA
    (trustme) whose certificate is `ca_file`, and no plain port."""

    def __init__(
        self, directory: Path, port: int = 0, password: str | None = None, tls: bool = False
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(MISSING)
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.password = password
        self.tls = tls
        self.ca_file = directory / "redis-ca.pem"
        self.proc: subprocess.Popen[bytes] | None = None
        if tls:
            authority = trustme.CA()
            leaf = authority.issue_cert(LOOPBACK, "localhost")
            authority.cert_pem.write_to_path(str(self.ca_file))
            leaf.private_key_pem.write_to_path(str(directory / "redis-key.pem"))
            leaf.cert_chain_pems[0].write_to_path(str(directory / "redis-cert.pem"))

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}{LOOPBACK}:{self.port}/0?ssl_ca_certs={self.ca_file}"
        return f"redis://{auth}{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        if self.tls:
            argv = [self.binary, "--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            argv += ["--tls-cert-file", str(self.directory / "redis-cert.pem")]
            argv += ["--tls-key-file", str(self.directory / "redis-key.pem")]
            argv += ["--tls-ca-cert-file", str(self.ca_file)]
        else:
            argv = [self.binary, "--port", str(self.port)]
        argv += ["--bind", LOOPBACK, "--save", "", "--appendonly", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
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
