"""The verification code of a WebRTC link (docs/verification.md), shared by the echo peer
(server/echo.py) and the Python test peer (server/contrib/peer.py); the browser computes
the same code in public/verifycode.js (tests/unit/test_verification.py checks both against
the same vectors).

Derivation, version 1: the two SHA-256 DTLS certificate fingerprints of the link, each
written as upper-case hex pairs joined by ':', sorted, so both ends get the same input;
SHA-256 over ``"LAN Call verification v1\\n" + first + "\\n" + second``; the first five
bytes of that digest pick five words from ``WORDS`` (40 bits). The whole digest goes in the
QR code (``qr_text``), so a scanned code compares all 256 bits.
"""

from __future__ import annotations

import hashlib
import re

DOMAIN = "LAN Call verification v1"
CODE_WORDS = 5
QR_PREFIX = "LANCALL-VERIFY-1"

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


def verification_digest(fingerprint_a: str, fingerprint_b: str) -> bytes:
    first, second = sorted((normalize_fingerprint(fingerprint_a), normalize_fingerprint(fingerprint_b)))
    return hashlib.sha256(f"{DOMAIN}\n{first}\n{second}".encode()).digest()


def code_words(digest: bytes) -> list[str]:
    return [WORDS[byte] for byte in digest[:CODE_WORDS]]


def verification_code(fingerprint_a: str, fingerprint_b: str) -> str:
    """The five words both ends of a link show, e.g. ``"otter maple comet harbor lemon"``."""
    return " ".join(code_words(verification_digest(fingerprint_a, fingerprint_b)))


def qr_text(fingerprint_a: str, fingerprint_b: str) -> str:
    """What the QR code says: the words and the whole digest."""
    digest = verification_digest(fingerprint_a, fingerprint_b)
    return f"{QR_PREFIX} {'-'.join(code_words(digest))} {digest.hex()}"


def link_code(local_sdp: str, remote_sdp: str) -> str | None:
    """The code of a link from its negotiated descriptions (what aiortc exposes), or None
    when either has no SHA-256 fingerprint."""
    local, remote = sdp_fingerprint(local_sdp), sdp_fingerprint(remote_sdp)
    if local is None or remote is None:
        return None
    return verification_code(local, remote)
