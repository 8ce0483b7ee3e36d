"""The verification code (server/verification.py) against the vectors the browser's
public/verify/verifycode.js is tested with, and the same word list in both languages."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from server.verification import (
    COMMIT_DOMAIN,
    DOMAIN,
    WORDS,
    CodeExchange,
    commitment,
    fingerprint_of_der,
    normalize_fingerprint,
    qr_text,
    sdp_fingerprint,
    verification_code,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "js" / "verification-vectors.json").read_text())["vectors"]

pytestmark = pytest.mark.unit

ANN = ":".join(["A1"] * 32)
BOB = ":".join(["B2"] * 32)
MALLORY = ":".join(["C3"] * 32)


def test_vectors_hold() -> None:
    assert len(VECTORS) >= 5
    for v in VECTORS:
        assert commitment(v["a"], v["nonce_a"]) == v["commit_a"]
        assert commitment(v["b"], v["nonce_b"]) == v["commit_b"]
        assert verification_code(v["a"], v["nonce_a"], v["b"], v["nonce_b"]) == v["code"]
        assert qr_text(v["a"], v["nonce_a"], v["b"], v["nonce_b"]) == v["qr"]


def test_first_vector_by_hand() -> None:
    """The derivation spelled out with hashlib alone, so the module cannot drift from the note."""
    v = VECTORS[0]
    a, b = normalize_fingerprint(v["a"]), normalize_fingerprint(v["b"])
    assert b < a  # "0F..." sorts first
    digest = hashlib.sha256(f"{DOMAIN}\n{b}\n{v['nonce_b']}\n{a}\n{v['nonce_a']}".encode()).digest()
    assert v["code"] == " ".join(WORDS[x] for x in digest[:5])
    assert v["commit_a"] == hashlib.sha256(f"{COMMIT_DOMAIN}\n{a}\n{v['nonce_a']}".encode()).hexdigest()


def test_order_independent_and_sensitive() -> None:
    v = VECTORS[1]
    a, na, b, nb = v["a"], v["nonce_a"], v["b"], v["nonce_b"]
    assert verification_code(a, na, b, nb) == verification_code(b, nb, a, na)
    changed = normalize_fingerprint(a)
    changed = ("A" if changed[0] != "A" else "B") + changed[1:]
    assert qr_text(changed, na, b, nb) != qr_text(a, na, b, nb)
    other_nonce = ("0" if nb[0] != "0" else "1") + nb[1:]
    assert qr_text(a, na, b, other_nonce) != qr_text(a, na, b, nb)


def exchange(one: CodeExchange, other: CodeExchange, one_fp: str, other_fp: str) -> None:
    """Run the exchange as two channels would carry it: both commit at open, then each
    answers what arrives (messages from `one` reach `other` and back, in order)."""
    to_other, to_one = one.start(), other.start()
    while to_other or to_one:
        replies_to_one = [r for m in to_other for r in other.receive(m["type"], m["data"], one_fp)]
        replies_to_other = [r for m in to_one for r in one.receive(m["type"], m["data"], other_fp)]
        to_other, to_one = replies_to_other, replies_to_one


def test_both_ends_get_the_same_code_from_each_others_nonce() -> None:
    ann, bob = CodeExchange(ANN), CodeExchange(BOB)
    exchange(ann, bob, ANN, BOB)
    assert ann.code is not None and ann.code == bob.code and ann.qr == bob.qr
    assert ann.code == verification_code(ANN, ann.nonce, BOB, bob.nonce)
    again_ann, again_bob = CodeExchange(ANN), CodeExchange(BOB)
    exchange(again_ann, again_bob, ANN, BOB)
    assert again_ann.qr != ann.qr  # a fresh code on every connection


def test_a_side_that_answers_before_it_committed_still_commits_first() -> None:
    ann = CodeExchange(ANN)
    bob = CodeExchange(BOB)
    sent = ann.receive("verify-commit", bob.start()[0]["data"], BOB)
    assert [m["type"] for m in sent] == ["verify-commit", "verify-reveal"]
    assert ann.start() == []


def test_the_exchange_refuses_what_breaks_its_rules() -> None:
    nonce = "ab" * 32
    early = CodeExchange(ANN)
    early.start()
    early.receive("verify-reveal", nonce, BOB)
    assert early.failed == "revealed before committing" and early.code is None

    lying = CodeExchange(ANN)
    lying.start()
    lying.receive("verify-commit", commitment(BOB, nonce), BOB)
    lying.receive("verify-reveal", "cd" * 32, BOB)  # not the nonce it committed to
    assert lying.failed == "does not match its commitment" and lying.code is None
    lying.receive("verify-reveal", nonce, BOB)  # nothing is taken after a failure
    assert lying.code is None

    twice = CodeExchange(ANN)
    twice.receive("verify-commit", commitment(BOB, nonce), BOB)
    twice.receive("verify-commit", commitment(BOB, "cd" * 32), BOB)
    assert twice.failed == "committed twice"

    for bad in ("AB" * 32, "ab" * 31, 7, None):
        broken = CodeExchange(ANN)
        broken.receive("verify-commit", bad, BOB)
        assert broken.failed == "malformed"

    # Its nonce with someone else's certificate: the commitment binds the certificate too.
    swapped = CodeExchange(ANN)
    swapped.receive("verify-commit", commitment(MALLORY, nonce), BOB)
    swapped.receive("verify-reveal", nonce, BOB)
    assert swapped.failed == "does not match its commitment"


def test_a_man_in_the_middle_cannot_steer_both_codes_to_match() -> None:
    """Mallory relays Ann to Bob with her own certificate on each side and is free to pick
    her nonces; she must commit before Ann or Bob reveal, so whatever she picks, the two
    codes are as if drawn at random. Over 64 connections with her best strategy (answer
    with the nonce that made the other leg's code, having seen it), no two codes match;
    with version 1's fixed code she would need only certificates, chosen beforehand."""
    matches = 0
    for _ in range(64):
        ann, ann_side = CodeExchange(ANN), CodeExchange(MALLORY)
        exchange(ann, ann_side, ANN, MALLORY)
        bob_side, bob = CodeExchange(MALLORY), CodeExchange(BOB)
        # She knows Ann's leg's code before Bob's leg starts and may reuse its nonce.
        bob_side.nonce = ann_side.nonce
        exchange(bob_side, bob, MALLORY, BOB)
        assert ann.code is not None and bob.code is not None
        matches += ann.code == bob.code
    assert matches == 0


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
    assert fingerprint_of_der(b"abc").replace(":", "") == hashlib.sha256(b"abc").hexdigest().upper()


def test_browser_uses_the_same_word_list() -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed (scripts/setup installs it)"
    script = "import('./public/verify/verifycode.js').then((m) => console.log(JSON.stringify(m.WORDS)))"
    result = subprocess.run(
        [node, "--experimental-detect-module", "-e", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == list(WORDS)
