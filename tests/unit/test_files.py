"""Atomic writes never follow a file or symlink planted next to the target."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from server.files import write_private, write_public


@pytest.mark.parametrize("write", [write_private, write_public])
@pytest.mark.parametrize("planted", ["peers.json.new", "peers.json.tmp", ".peers.json.tmp"])
def test_planted_symlink_is_not_followed(tmp_path: Path, write: object, planted: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / planted).symlink_to(victim)
    target = tmp_path / "peers.json"
    write(target, b"new content")  # type: ignore[operator]
    assert victim.read_text() == "precious"
    assert target.read_bytes() == b"new content" and not target.is_symlink()
    assert (tmp_path / planted).is_symlink()  # left alone, not replaced or removed


def test_private_file_is_owner_only_even_over_a_wider_file(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    write_private(target, b"secret")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_bytes() == b"secret"
    write_public(tmp_path / "ca.pem", b"cert")
    assert stat.S_IMODE((tmp_path / "ca.pem").stat().st_mode) == 0o644


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    for _ in range(3):
        write_private(tmp_path / "peers.json", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["peers.json"]
