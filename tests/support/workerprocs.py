"""The WORKERS processes as /proc shows them (Linux): a parent's live children, and which
of them holds a given client connection (the server side of the client's TCP connection
in /proc/net/tcp is a socket inode exactly one worker has open)."""

from __future__ import annotations

import os
from pathlib import Path


def children(parent: int) -> set[int]:
    """Live (not zombie) processes whose parent is `parent`."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            continue
        if int(ppid) == parent and state != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def is_worker(pid: int) -> bool:
    """Whether `pid` is a `python -m server --worker N` (before killing a remembered pid)."""
    try:
        return b"--worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def socket_inodes(pid: int) -> set[int]:
    """The sockets process `pid` has open (none once it has exited)."""
    inodes: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def holder(client_port: int, server_port: int, pids: set[int]) -> int:
    """Which of `pids` holds the IPv4 connection from local port `client_port` to `server_port`."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if (local, remote) == (server_port, client_port):
            inode = int(fields[9])
            for pid in pids:
                if inode in socket_inodes(pid):
                    return pid
    raise LookupError(f"no worker holds the connection from port {client_port}")
