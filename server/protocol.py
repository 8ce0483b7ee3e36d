"""The /rtc wire format (docs/protocol.md): parsing, validation, and the messages the
server builds. Pure functions; nothing here touches a socket.

Validation is strict about the fields the server relies on (type, target, sdp, name)
and lenient about the rest, so an unmodified client of the original protocol passes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

try:  # orjson: +36-45% relayed messages/s end to end (bench/relay.py); json is the fallback
    import orjson

    def dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

    _loads: Callable[[str], Any] = orjson.loads
    _JSONError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - exercised only without the 'fast' extra
    import json

    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    _loads = json.loads
    _JSONError = ValueError

# Error codes (docs/protocol.md §3).
BAD_JSON: Final = "bad-json"
BAD_MESSAGE: Final = "bad-message"
UNKNOWN_TYPE: Final = "unknown-type"
NOT_IDENTIFIED: Final = "not-identified"
UNKNOWN_PEER: Final = "unknown-peer"
RATE_LIMITED: Final = "rate-limited"
BAD_NAME: Final = "bad-name"
PEER_AWAY: Final = "peer-away"  # target listed, socket gone: held for its resume
UNDELIVERED: Final = "undelivered"  # could not be held either: dropped
NOT_IN_CALL: Final = "not-in-call"  # group calls (docs/protocol.md §8)
NOT_INVITED: Final = "not-invited"
CALL_FULL: Final = "call-full"
UNSUPPORTED: Final = "unsupported"
SPACE_REQUIRED: Final = "space-required"  # OPEN_SPACE=0 and identify named no space (§11)
ERROR_CODES: Final = frozenset(
    {
        BAD_JSON, BAD_MESSAGE, UNKNOWN_TYPE, NOT_IDENTIFIED, UNKNOWN_PEER, RATE_LIMITED, BAD_NAME,
        PEER_AWAY, UNDELIVERED, NOT_IN_CALL, NOT_INVITED, CALL_FULL, UNSUPPORTED, SPACE_REQUIRED,
    }
)  # fmt: skip

# Relay messages: the server forwards them to `target` after stamping the sender. Only
# these fields travel (docs/protocol.md §2); anything else a client adds is dropped.
RELAY_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "offer": ("type", "sdp", "call", "link", "rejoin"),
    "accept": ("type", "sdp", "call", "link"),
    "reject": ("reason", "call", "link"),
    "icecandidate": ("candidate", "call", "link"),
    "hangup": ("reason", "call", "link"),
    "ringing": ("call",),
    # (ext) Someone in a space removed a person: the others move with them to a new code
    # (§11); between two people of one space only.
    "space-move": ("code", "removed"),
}
RELAY_TYPES: Final = frozenset(RELAY_FIELDS)
CALL_TYPES: Final = frozenset({"invite", "join", "leave-call"})
CLIENT_TYPES: Final = RELAY_TYPES | CALL_TYPES | {"identify", "leave", "ping"}
GROUP: Final = "group"  # the capability of taking part in group calls
DATA: Final = "data"  # the capability of data-only links (messages, files: §9)
DATA_LINK: Final = "data"  # relay `link` value of a data-only link
MAX_CAPS: Final = 16
MAX_CALL_ID_LENGTH: Final = 64
# Space codes (docs/protocol.md §11): no 0/O, 1/I/L, so a code read aloud or off a screen
# is typed right; compared without case.
SPACE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SPACE_MIN_LENGTH: Final = 4
SPACE_MAX_LENGTH: Final = 16
_SPACE_CODE = re.compile(f"[{SPACE_ALPHABET}]{{{SPACE_MIN_LENGTH},{SPACE_MAX_LENGTH}}}")

MAX_ID_LENGTH: Final = 128
# Real messages nest 3-4 levels; the JSON parser accepts far deeper input than the
# serialiser will write back (orjson: 1024 vs 254), so depth is refused up front.
MAX_DEPTH: Final = 16
MAX_REASON_LENGTH: Final = 64


class ProtocolError(Exception):
    """Client input the server refuses; becomes an `error` message, never a crash."""

    def __init__(self, code: str, message: str, ref: str | None = None, target: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.target = target  # the relay's target, for errors about delivering to it


@dataclass(frozen=True, slots=True)
class Identify:
    name: str
    caps: frozenset[str] = frozenset()  # what the client can do, e.g. {"group"}
    space: str | None = None  # a space code (upper case); None: the open network (§11)


@dataclass(frozen=True, slots=True)
class Leave:
    """The tab goes away on purpose: remove it from every list now, no grace period."""


@dataclass(frozen=True, slots=True)
class Ping:
    t: float | int | None  # echoed in the `pong`


@dataclass(frozen=True, slots=True)
class Invite:
    target: str
    call: str


@dataclass(frozen=True, slots=True)
class Join:
    call: str


@dataclass(frozen=True, slots=True)
class LeaveCall:
    call: str


@dataclass(frozen=True, slots=True)
class Relay:
    type: str
    target: str
    data: dict[str, Any]  # the client's `data`, validated; sender fields not yet stamped


Message = Identify | Leave | Ping | Relay | Invite | Join | LeaveCall


def parse(text: str) -> Message:
    """Parse one text frame into a validated message or raise ProtocolError."""
    try:
        message = _loads(text)
    except (_JSONError, RecursionError):
        raise ProtocolError(BAD_JSON, "frame is not valid JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError(BAD_MESSAGE, "a message must be a JSON object")
    kind = message.get("type")
    # Nesting deeper than MAX_DEPTH needs more than MAX_DEPTH brackets; counting them is
    # far cheaper than the walk, which real messages (3-4 levels) then skip (bench/relay.py).
    if text.count("{") + text.count("[") > MAX_DEPTH and _too_deep(message, MAX_DEPTH):
        ref = kind[:40] if isinstance(kind, str) else None
        raise ProtocolError(BAD_MESSAGE, f"message nests deeper than {MAX_DEPTH} levels", ref)
    if not isinstance(kind, str):
        raise ProtocolError(BAD_MESSAGE, "a message needs a string 'type'")
    if kind not in CLIENT_TYPES:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}", ref=kind[:40])
    data = message.get("data")
    if not isinstance(data, dict):
        raise ProtocolError(BAD_MESSAGE, f"'{kind}' needs an object 'data'", ref=kind)
    if kind == "identify":
        return _identify(data)
    if kind == "leave":
        return Leave()
    if kind == "ping":
        return _ping(data)
    if kind == "invite":
        return Invite(_target(kind, data), _call_id(kind, data))
    if kind == "join":
        return Join(_call_id(kind, data))
    if kind == "leave-call":
        return LeaveCall(_call_id(kind, data))
    if "call" in data:
        _call_id(kind, data)
    if "link" in data and data["link"] != DATA_LINK:
        raise ProtocolError(BAD_MESSAGE, f"data.link must be {DATA_LINK!r}", ref=kind)
    return Relay(kind, _target(kind, data), _RELAY_CHECKS[kind](data))


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _identify(data: dict[str, Any]) -> Identify:
    name = data.get("name")
    if not isinstance(name, str):
        raise ProtocolError(BAD_MESSAGE, "'identify' needs a string data.name", ref="identify")
    claimed = data.get("id")
    if claimed is not None and not isinstance(claimed, str):
        raise ProtocolError(BAD_MESSAGE, "data.id must be a string", ref="identify")
    # data.id is ignored: the server is the only source of ids.
    raw_space = data.get("space")
    space = None if raw_space is None else clean_space(raw_space)
    if space is None and raw_space is not None:
        raise ProtocolError(
            BAD_MESSAGE,
            f"data.space must be a code of {SPACE_MIN_LENGTH}-{SPACE_MAX_LENGTH} characters from "
            f"{SPACE_ALPHABET} (no 0, O, 1, I or L); check the code",
            ref="identify",
        )
    caps = data.get("caps")
    if caps is None:
        return Identify(name, space=space)
    if not isinstance(caps, list):
        raise ProtocolError(BAD_MESSAGE, "data.caps must be a list of strings", ref="identify")
    return Identify(name, frozenset(c for c in caps[:MAX_CAPS] if isinstance(c, str) and len(c) <= 32), space)


def clean_space(raw: object) -> str | None:
    """A space code in its one spelling (upper case), or None when `raw` is not one."""
    if not isinstance(raw, str) or len(raw) > SPACE_MAX_LENGTH:
        return None
    code = raw.upper()
    return code if _SPACE_CODE.fullmatch(code) else None


def _call_id(kind: str, data: dict[str, Any]) -> str:
    call = data.get("call")
    if not isinstance(call, str) or not 0 < len(call) <= MAX_CALL_ID_LENGTH:
        raise ProtocolError(BAD_MESSAGE, f"'{kind}' needs a string data.call", ref=kind)
    return call


def _ping(data: dict[str, Any]) -> Ping:
    t = data.get("t")
    if t is not None and (isinstance(t, bool) or not isinstance(t, int | float)):
        raise ProtocolError(BAD_MESSAGE, "'ping' data.t must be a number", ref="ping")
    return Ping(t)


def _target(kind: str, data: dict[str, Any]) -> str:
    target = data.get("target")
    if not isinstance(target, str) or not 0 < len(target) <= MAX_ID_LENGTH:
        raise ProtocolError(BAD_MESSAGE, f"'{kind}' needs a string data.target", ref=kind)
    return target


def _sdp(kind: str, sdp_type: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(data: dict[str, Any]) -> dict[str, Any]:
        if data.get("type", sdp_type) != sdp_type:
            raise ProtocolError(BAD_MESSAGE, f"'{kind}' needs data.type {sdp_type!r}", ref=kind)
        if not isinstance(data.get("sdp"), str):
            raise ProtocolError(BAD_MESSAGE, f"'{kind}' needs a string data.sdp", ref=kind)
        return data

    return check


def _with_reason(kind: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(data: dict[str, Any]) -> dict[str, Any]:
        reason = data.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH):
            raise ProtocolError(
                BAD_MESSAGE,
                f"data.reason must be a string of at most {MAX_REASON_LENGTH}",
                ref=kind,
            )
        return data

    return check


def _icecandidate(data: dict[str, Any]) -> dict[str, Any]:
    if "candidate" not in data:
        raise ProtocolError(BAD_MESSAGE, "'icecandidate' needs data.candidate", ref="icecandidate")
    cand = data["candidate"]
    if cand is None:  # end-of-candidates
        return data
    if not isinstance(cand, dict) or not isinstance(cand.get("candidate"), str):
        raise ProtocolError(
            BAD_MESSAGE,
            "data.candidate must be null or an object with a string 'candidate'",
            ref="icecandidate",
        )
    mid, index = cand.get("sdpMid"), cand.get("sdpMLineIndex")
    if (mid is not None and not isinstance(mid, str)) or (
        index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0)
    ):
        raise ProtocolError(
            BAD_MESSAGE,
            "candidate.sdpMid must be a string and sdpMLineIndex a non-negative integer",
            ref="icecandidate",
        )
    return data


def _space_move(data: dict[str, Any]) -> dict[str, Any]:
    code = clean_space(data.get("code"))
    if code is None:
        raise ProtocolError(
            BAD_MESSAGE,
            f"data.code must be a space code of {SPACE_MIN_LENGTH}-{SPACE_MAX_LENGTH} characters "
            f"from {SPACE_ALPHABET}",
            "space-move",
        )
    removed = data.get("removed")
    if removed is not None and not (isinstance(removed, str) and 0 < len(removed) <= MAX_ID_LENGTH):
        raise ProtocolError(BAD_MESSAGE, "data.removed must be the id of the person removed", "space-move")
    return {**data, "code": code}


_RELAY_CHECKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "offer": _sdp("offer", "offer"),
    "accept": _sdp("accept", "answer"),
    "reject": _with_reason("reject"),
    "hangup": _with_reason("hangup"),
    "icecandidate": _icecandidate,
    "ringing": lambda data: data,
    "space-move": lambda data: _space_move(data),
}


_SPACES = re.compile(r"\s+")
_ZWJ = "\u200d"
# Letters that render as nothing (fillers and blanks): category Lo/So, so they survive
# the category filter below, yet they make an empty-looking or padded name.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Scripts with lookalike letters ("Bob" with a Cyrillic "о"): one word may use one of them.
_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")
# Cyrillic and Greek letters that look like Latin ones, for comparing names (lower case).
_SKELETON = str.maketrans(
    "аеорсухкмтнвіјѕһԁԛԝґοαειϲκνρτυχμзэѵӏ",
    "aeopcyxkmthbijshdqwroaeickvptuxmзэvl",
)
_MAX_MARKS = 2  # combining marks in a row on a script that needs them ("zalgo" past that)


def _is_emoji(ch: str) -> bool:
    code = ord(ch)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or code in (0xFE0F, 0x20E3)


def _script(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    return next((script for script in _CONFUSABLE_SCRIPTS if name.startswith(script)), None)


def clean_name(raw: str, max_length: int) -> str:
    """Normalise a display name (docs/protocol.md §4) or raise ProtocolError.

    NFC; control characters go (line breaks and tabs become spaces); format characters
    (bidi controls, zero-width and soft hyphens, tag characters, U+061C, U+180E, ...) and
    blank letters go, except a zero-width joiner inside an emoji sequence; combining
    marks go where NFC has already composed every real accent (Latin, Greek, Cyrillic)
    and are capped elsewhere;
    whitespace folds. A word mixing Latin, Cyrillic or Greek letters is refused: that is
    how one name impersonates another.
    """
    # Cleaning only removes characters, but a name far past the limit is refused before
    # any per-character work: rejecting must stay cheap (64 KiB names at 45/s once cost
    # a whole core).
    if len(raw) > 4 * max_length + 16:
        raise ProtocolError(BAD_NAME, f"name is longer than {max_length} characters", ref="identify")
    text = unicodedata.normalize("NFC", raw)
    kept: list[str] = []
    marks = 0
    base_script: str | None = None
    for index, ch in enumerate(text):
        category = unicodedata.category(ch)
        if category == "Cc" or category in ("Zl", "Zp"):
            if ch.isspace():  # line breaks and tabs separate words; other controls vanish
                kept.append(" ")
            continue
        if category in ("Cf", "Cs", "Co", "Cn") or ch in _BLANK_LETTERS:
            following = text[index + 1] if index + 1 < len(text) else ""
            if ch == _ZWJ and kept and _is_emoji(kept[-1]) and _is_emoji(following):
                kept.append(ch)
            continue
        if category in ("Mn", "Me"):
            if _is_emoji(ch) or (base_script is None and kept and marks < _MAX_MARKS and kept[-1] != " "):
                kept.append(ch)
                marks += 1
            continue
        marks = 0
        # Marks on ASCII (punctuation, digits) are decoration, as on Latin letters.
        base_script = "LATIN" if ch.isascii() else _script(ch)
        kept.append(ch)
    text = _SPACES.sub(" ", "".join(kept)).strip()
    if not text:
        raise ProtocolError(BAD_NAME, "name is empty after trimming", ref="identify")
    if len(text) > max_length:
        raise ProtocolError(BAD_NAME, f"name is longer than {max_length} characters", ref="identify")
    for word in text.split(" "):
        scripts = {_script(ch) for ch in word if ch.isalpha()} - {None}
        if len(scripts) > 1:
            raise ProtocolError(
                BAD_NAME,
                f"{word!r} mixes letters of different alphabets; type it in one alphabet",
                ref="identify",
            )
    return text


def name_key(name: str) -> str:
    """How a name compares for reservation: case, accents, spacing and Latin lookalikes
    folded ("ECHO  tést", "Есho test" and "Echo test" are one name)."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(letters.translate(_SKELETON).split())


# --- messages the server sends -------------------------------------------------------


def ready(version: str, peer_id: str, token: str, config: dict[str, Any]) -> str:
    return dumps({"type": "ready", "version": version, "id": peer_id, "token": token, "config": config})


def peer(peer_id: str, name: str, kind: str, remove: bool = False, in_call: bool = False) -> str:
    data: dict[str, Any] = {"id": peer_id, "name": name, "kind": kind}
    if remove:
        data["remove"] = True
    elif in_call:
        data["inCall"] = True
    return dumps({"type": "peer", "data": data})


def call(call_id: str, members: list[str], ended: bool = False) -> str:
    data: dict[str, Any] = {"id": call_id, "members": members}
    if ended:
        data["ended"] = True
    return dumps({"type": "call", "data": data})


def invite(source: str, target: str, call_id: str, members: list[str]) -> str:
    return dumps(
        {"type": "invite", "data": {"source": source, "target": target, "call": call_id, "members": members}}
    )


def error(code: str, message: str, ref: str | None = None, target: str | None = None) -> str:
    data: dict[str, Any] = {"code": code, "message": message}
    if ref is not None:
        data["ref"] = ref
    if target is not None:
        data["target"] = target
    return dumps({"type": "error", "data": data})


def pong(t: float | int | None) -> str:
    return dumps({"type": "pong", "data": {"t": t}})


def relay(message: Relay, source: str) -> str:
    """The forwarded frame: the documented fields only, with the sender fields set to the
    real sender id."""
    data = {key: message.data[key] for key in RELAY_FIELDS[message.type] if key in message.data}
    data["source"] = source
    data["target"] = message.target
    if message.type == "icecandidate":
        data["id"] = source
    return dumps({"type": message.type, "data": data})
