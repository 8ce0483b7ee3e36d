"""The verification code of a WebRTC link (docs/verification.md), shared by the echo peer
(server/echo.py) and the Python test peer (lancall_peer/peer.py); the browser computes
the same code in public/verify/verifycode.js (tests/unit/test_verification.py checks both against
the same vectors).

Derivation, version 2 (issue 18, 25): a code both sides cannot steer. Over the link's own
data channel each side first sends a commitment, SHA-256 over
``"LAN Call commit v2\n" + its fingerprint + "\n" + its nonce`` (32 random bytes as hex),
and only after it has the other side's commitment sends the nonce itself. The code is
SHA-256 over ``"LAN Call verification v2\n"`` and the two (fingerprint, nonce) pairs in
sorted order; its first five bytes pick five words of ``WORDS`` (40 bits). Whoever sits
in the middle has to fix its own nonce before it learns the honest side's, so each try
matches with probability 2^-40 and no search beforehand helps. The whole digest goes in
the QR code (``qr_text``).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from typing import Any

DOMAIN = "LAN Call verification v2"
COMMIT_DOMAIN = "LAN Call commit v2"
CODE_WORDS = 5
QR_PREFIX = "LANCALL-VERIFY-2"
NONCE_BYTES = 32

# 256 short, common, distinct English nouns: one byte each. Never reorder or edit: every
# code ever shown depends on this list (a change is a new version of the derivation).
# fmt: off
WORDS: tuple[str, ...] = (
    "acorn", "actor", "agent", "alarm", "album", "amber", "angle", "apple", "arena", "armor", "arrow",
    "atlas", "attic", "audio", "award", "badge", "baker", "bamboo", "banjo", "barn", "basket", "beach",
    "beard", "bench", "berry", "bison", "blade", "blanket", "block", "bloom", "board", "boat", "book",
    "boot", "bottle", "bowl", "brass", "bread", "brick", "bridge", "broom", "brush", "bucket", "cabin",
    "cactus", "cake", "camel", "camera", "canal", "candle", "canoe", "canyon", "carbon", "carpet", "carrot",
    "castle", "cedar", "cello", "chalk", "chapel", "cheese", "cherry", "chess", "chimney", "chip", "cider",
    "circle", "clock", "cloud", "clover", "coast", "cobra", "coffee", "comet", "copper", "coral", "cotton",
    "cougar", "crab", "crane", "cricket", "crown", "cube", "cup", "curtain", "daisy", "dance", "delta",
    "denim", "desert", "diamond", "dolphin", "donkey", "dragon", "drum", "eagle", "echo", "elephant", "elk",
    "ember", "engine", "falcon", "feather", "fern", "ferry", "film", "flag", "flute", "forest", "fossil",
    "fountain", "fox", "frog", "galaxy", "garden", "garlic", "ginger", "glacier", "globe", "goat", "gold",
    "gorilla", "grape", "guitar", "hammer", "harbor", "harp", "hawk", "helmet", "honey", "hotel", "igloo",
    "iris", "island", "ivory", "jacket", "jaguar", "jewel", "juice", "jungle", "kayak", "kettle", "kiwi",
    "koala", "ladder", "lagoon", "lake", "lamp", "lantern", "lemon", "leopard", "letter", "lily", "lion",
    "lizard", "llama", "lobster", "lotus", "magnet", "mango", "maple", "marble", "meadow", "melon", "metal",
    "mirror", "monkey", "moose", "mosaic", "motor", "mountain", "muffin", "museum", "nest", "oasis",
    "ocean", "olive", "onion", "opera", "orange", "orbit", "orchid", "otter", "owl", "paddle", "panda",
    "paper", "parrot", "peach", "peanut", "pearl", "pebble", "pepper", "piano", "pigeon", "pillow", "pilot",
    "pine", "planet", "plum", "pocket", "polar", "pony", "potato", "pumpkin", "puzzle", "quartz", "rabbit",
    "radar", "radio", "rainbow", "raven", "ribbon", "river", "robin", "rocket", "ruby", "saddle", "salmon",
    "sandal", "scarf", "seal", "shark", "shell", "silver", "skate", "sloth", "snail", "spider", "spoon",
    "squid", "statue", "sugar", "summit", "sunset", "swan", "table", "tiger", "tomato", "topaz", "tractor",
    "trumpet", "tulip", "turtle", "umbrella", "valley", "velvet", "violin", "volcano", "wagon", "walnut",
    "whale", "window", "wizard", "yogurt", "zebra",
)
# fmt: on

_HEX_PAIRS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){31}$")
_SDP_FINGERPRINT = re.compile(r"^a=fingerprint:(\S+)\s+(\S+)\s*$", re.IGNORECASE | re.MULTILINE)


def normalize_fingerprint(value: str) -> str:
    """A SHA-256 fingerprint as ``AB:CD:...`` (32 upper-case pairs). Accepts the SDP form
    with or without the ``sha-256`` prefix, any case, with or without colons."""
    text = value.strip()
    if text.lower().startswith("sha-256"):
        text = text[len("sha-256") :].strip()
    hexdigits = text.replace(":", "").upper()
    pairs = ":".join(hexdigits[i : i + 2] for i in range(0, len(hexdigits), 2))
    if not _HEX_PAIRS.match(pairs):
        raise ValueError(f"not a SHA-256 fingerprint: {value[:120]!r}")
    return pairs


def fingerprint_of_der(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER-encoded certificate, as DTLS checks it."""
    return normalize_fingerprint(hashlib.sha256(der).hexdigest())


def sdp_fingerprint(sdp: str) -> str | None:
    """The ``a=fingerprint:sha-256`` of a description (the first; bundled sections share
    one transport), or None when it has none."""
    for algorithm, value in _SDP_FINGERPRINT.findall(sdp):
        if algorithm.lower() == "sha-256":
            return normalize_fingerprint(value)
    return None


def commitment(fingerprint: str, nonce: str) -> str:
    """What a side sends first: it binds the side to its nonce (and its own certificate)."""
    text = f"{COMMIT_DOMAIN}\n{normalize_fingerprint(fingerprint)}\n{nonce}"
    return hashlib.sha256(text.encode()).hexdigest()


def verification_digest(fingerprint_a: str, nonce_a: str, fingerprint_b: str, nonce_b: str) -> bytes:
    first, second = sorted(
        ((normalize_fingerprint(fingerprint_a), nonce_a), (normalize_fingerprint(fingerprint_b), nonce_b))
    )
    text = f"{DOMAIN}\n{first[0]}\n{first[1]}\n{second[0]}\n{second[1]}"
    return hashlib.sha256(text.encode()).digest()


def code_words(digest: bytes) -> list[str]:
    return [WORDS[byte] for byte in digest[:CODE_WORDS]]


def verification_code(fingerprint_a: str, nonce_a: str, fingerprint_b: str, nonce_b: str) -> str:
    """The five words both ends show; the order of the two sides does not matter."""
    return " ".join(code_words(verification_digest(fingerprint_a, nonce_a, fingerprint_b, nonce_b)))


def qr_text(fingerprint_a: str, nonce_a: str, fingerprint_b: str, nonce_b: str) -> str:
    """What the QR code says: the words and the whole digest."""
    digest = verification_digest(fingerprint_a, nonce_a, fingerprint_b, nonce_b)
    return f"{QR_PREFIX} {'-'.join(code_words(digest))} {digest.hex()}"


# The data-channel messages of the exchange (docs/protocol.md §6).
EXCHANGE_TYPES = frozenset({"verify-commit", "verify-reveal"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class CodeExchange:
    """One link's commit-then-reveal (docs/protocol.md §6, ``verify-commit`` and
    ``verify-reveal``): feed it the other side's messages, send what it returns. ``code``
    is set once both nonces are known and theirs matched its commitment; ``failed`` says
    why not (a side that reveals before committing, or a nonce its commitment does not
    match), and nothing it sends later is taken."""

    def __init__(self, local_fingerprint: str) -> None:
        self.local = normalize_fingerprint(local_fingerprint)
        self.nonce = secrets.token_hex(NONCE_BYTES)
        self.remote: str | None = None
        self.their_commitment: str | None = None
        self.their_nonce: str | None = None
        self.committed = False
        self.failed: str | None = None
        self.code: str | None = None
        self.qr: str | None = None

    def start(self) -> list[dict[str, str]]:
        """The first message, sent as soon as the data channel is open (once)."""
        if self.committed:
            return []
        self.committed = True
        return [{"type": "verify-commit", "data": commitment(self.local, self.nonce)}]

    def receive(self, kind: str, data: object, remote_fingerprint: str | None) -> list[dict[str, str]]:
        """Take one of their exchange messages; returns ours to send, in order."""
        if self.failed or self.code:
            return []
        if not isinstance(data, str) or not _HEX64.match(data):
            self.failed = "malformed"
            return []
        if kind == "verify-commit":
            if self.their_commitment is not None:
                self.failed = "committed twice"
                return []
            self.their_commitment = data
            # Our nonce goes only after our own commitment, whichever side was first.
            return [*self.start(), {"type": "verify-reveal", "data": self.nonce}]
        if kind == "verify-reveal":
            if self.their_commitment is None:
                self.failed = "revealed before committing"
                return []
            if remote_fingerprint is None or commitment(remote_fingerprint, data) != self.their_commitment:
                self.failed = "does not match its commitment"
                return []
            self.remote = normalize_fingerprint(remote_fingerprint)
            self.their_nonce = data
            self.code = verification_code(self.local, self.nonce, self.remote, data)
            self.qr = qr_text(self.local, self.nonce, self.remote, data)
        return []


class ChannelCodes:
    """The exchange on one aiortc connection's chat channel, for the echo and the Python
    peer: `opened()` when the channel opens, `receive(kind, data)` for each exchange
    message. `pc` is the RTCPeerConnection (its descriptions carry the fingerprints),
    `channel()` the chat channel now (None before it is made); nothing is sent unless it
    is open."""

    def __init__(self, pc: Any, channel: Callable[[], Any]) -> None:
        self.pc = pc
        self.channel = channel
        self.exchange: CodeExchange | None = None

    @property
    def code(self) -> str | None:
        return self.exchange.code if self.exchange is not None else None

    def current(self) -> CodeExchange | None:
        """This connection's exchange, made once our own description (fingerprint) is set."""
        local = self.pc.localDescription
        if self.exchange is None and local is not None:
            fingerprint = sdp_fingerprint(local.sdp)
            if fingerprint is not None:
                self.exchange = CodeExchange(fingerprint)
        return self.exchange

    def opened(self) -> None:
        if (exchange := self.current()) is not None:
            self._send(exchange.start())

    def receive(self, kind: str, data: object) -> None:
        if (exchange := self.current()) is not None:
            remote = self.pc.remoteDescription
            their = sdp_fingerprint(remote.sdp) if remote is not None else None
            self._send(exchange.receive(kind, data, their))

    def _send(self, messages: list[dict[str, str]]) -> None:
        channel = self.channel()
        if channel is not None and channel.readyState == "open":
            for message in messages:
                channel.send(json.dumps(message))
