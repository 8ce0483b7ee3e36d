"""`python -m server` with an unusable CERTS_DIR: one actionable line and exit code 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trustme

from server.tls import CA_CERT, CA_KEY
from tests.support.net import free_port
from tests.support.servers import run_to_exit, server_env


def broken_certs_dir(tmp_path: Path, case: str) -> Path:
    if case == "under-a-file":
        (tmp_path / "a-file").write_text("x")
        return tmp_path / "a-file" / "certs"
    if case == "in-proc":
        return Path("/proc/lan-call-certs")
    certs = tmp_path / "certs"
    if case == "ca-pem-is-a-directory":
        (certs / CA_CERT).mkdir(parents=True)
        return certs
    # "mismatched-ca-key": a CA certificate with another CA's key
    certs.mkdir()
    ca, other = trustme.CA(), trustme.CA()
    (certs / CA_CERT).write_bytes(ca.cert_pem.bytes())
    (certs / CA_KEY).write_bytes(other.private_key_pem.bytes())
    os.chmod(certs / CA_KEY, 0o600)
    return certs


@pytest.mark.parametrize("case", ["under-a-file", "in-proc", "ca-pem-is-a-directory", "mismatched-ca-key"])
def test_unusable_certs_dir_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    certs = broken_certs_dir(tmp_path, case)
    env = server_env(PORT=str(free_port()), CERTS_DIR=str(certs), STATE_FILE=str(tmp_path / "state.json"))
    result = run_to_exit(env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "CERTS_DIR" in lines[0] or CA_KEY in lines[0], lines
