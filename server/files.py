"""Atomic writes of generated files: a reader (or a crash) never sees half a file.

The temporary file is created by `mkstemp` in the target's directory (a fresh random
name, O_EXCL, mode 0600), so a file or symlink planted next to the target is never
opened or followed; it is fsynced before the rename, so a crash leaves the old file or
the new one, never an empty one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by the owner only (0600), atomically."""
    _write_atomic(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    """Write a file anyone may read (a certificate), atomically."""
    _write_atomic(path, data, 0o644)
