"""The verification code (server/verification.py) against the vectors the browser's
public/verifycode.js is tested with, and the same word list in both languages."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from server.verification import (
    DOMAIN,
    WORDS,
    fingerprint_of_der,
    link_code,
    normalize_fingerprint,
    qr_text,
    sdp_fingerprint,
    verification_code,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "js" / "verification-vectors.json").read_text())["vectors"]

pytestmark = pytest.mark.unit


def test_vectors_hold() -> None:
    assert len(VECTORS) >= 4
    for vector in VECTORS:
        assert verification_code(vector["a"], vector["b"]) == vector["code"]
        assert qr_text(vector["a"], vector["b"]) == vector["qr"]


def test_first_vector_by_hand() -> None:
    """The derivation spelled out with hashlib alone, so the module cannot drift from the note."""
    a, b = ":".join(["AB"] * 32), ":".join(["0F"] * 32)
    digest = hashlib.sha256(f"{DOMAIN}\n{b}\n{a}".encode()).digest()  # "0F..." sorts first
    assert VECTORS[0]["code"] == " ".join(WORDS[x] for x in digest[:5])


def test_order_independent_and_sensitive() -> None:
    a, b = VECTORS[1]["a"], VECTORS[1]["b"]
    assert verification_code(a, b) == verification_code(b, a)
    changed = normalize_fingerprint(a)
    changed = ("A" if changed[0] != "A" else "B") + changed[1:]
    assert qr_text(changed, b) != qr_text(a, b)


def test_normalize_and_refuse() -> None:
    upper = ":".join(["0F"] * 32)
    assert normalize_fingerprint("sha-256 " + upper.lower()) == upper
    assert normalize_fingerprint(upper.replace(":", "")) == upper
    for bad in ("AB:CD", ":".join(["ZZ"] * 32), ""):
        with pytest.raises(ValueError):
            normalize_fingerprint(bad)


def test_sdp_and_der() -> None:
    fp = ":".join(["ab"] * 32)
    sdp = f"v=0\r\na=fingerprint:sha-384 {':'.join(['cd'] * 48)}\r\na=fingerprint:sha-256 {fp}\r\n"
    assert sdp_fingerprint(sdp) == fp.upper()
    assert sdp_fingerprint("v=0\r\n") is None
    assert link_code(sdp, "v=0\r\n") is None
    other = f"a=fingerprint:sha-256 {':'.join(['01'] * 32)}\r\n"
    assert link_code(sdp, other) == link_code(other, sdp) == verification_code(fp, ":".join(["01"] * 32))
    assert fingerprint_of_der(b"abc").replace(":", "") == hashlib.sha256(b"abc").hexdigest().upper()


def test_browser_uses_the_same_word_list() -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed (scripts/setup installs it)"
    script = "import('./public/verifycode.js').then((m) => console.log(JSON.stringify(m.WORDS)))"
    result = subprocess.run(
        [node, "--experimental-detect-module", "-e", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == list(WORDS)
