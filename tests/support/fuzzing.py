"""Hypothesis strategies and oracles shared by the fuzz tests of the signalling core
(tests/unit/test_fuzz_hub.py: the hub itself; tests/integration/test_fuzz.py: over real TLS).
See the former's docstring for what is checked and why.

Every message shape comes from the server's own tables (server/protocol.py): the client
types are `protocol.CLIENT_TYPES` (what `parse` dispatches on), a relay's fields are
`protocol.RELAY_FIELDS`, limits and space codes are its constants. A client type or relay
field the server learns without a strategy here fails at import, not silently unfuzzed."""

from __future__ import annotations

import json
import string
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st

from server import protocol
from server.hub import HubLimits

ERROR_CODES = protocol.ERROR_CODES  # the server's own table (docs/protocol.md §3)
CLIENT_TYPES = protocol.CLIENT_TYPES  # what `protocol.parse` dispatches on (docs/protocol.md §2, §8)
RELAY_TYPES = tuple(sorted(protocol.RELAY_TYPES))
# The fields each relay forwards (docs/protocol.md §2), besides source/target/id: the server's table.
FORWARDED = protocol.RELAY_FIELDS
SERVER_TYPES = ("ready", "peer", "error", "pong", "call")  # (and `invite`, a client type too)
OTHER_TYPES = ("chat", "disconnect", "typing", "", "OFFER", "offer ", "__proto__", "constructor")
FIELD_NAMES = (
    "type", "data", "target", "source", "id", "sdp", "candidate", "sdpMid", "sdpMLineIndex",
    "reason", "name", "remove", "kind", "token", "version", "config",
    "call", "link", "rejoin", "caps", "space", "code", "removed", "t",
)  # fmt: skip
INVISIBLE = (
    "\u200b\u200c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)
NASTY_CHARS = (
    "\x00",
    "\x07",
    "\n",
    "\t",
    "\r",
    " ",
    "\x7f",
    "\u0085",
    "\u2028",
    "\u200d",
    *INVISIBLE,
    "<",
    "\\",
    '"',
)

GENEROUS = HubLimits(rate_limit=1e9, rate_burst=10**9, resume_grace=60.0)


# --- frames, with symbolic references to real peer ids ------------------------------------


@dataclass(frozen=True)
class Ref:
    """Stands for the real id of a peer, known only once the example's peers exist."""

    role: str

    def __repr__(self) -> str:
        return f"<id of {self.role}>"


@dataclass(frozen=True)
class Slot:
    """Stands for a value only the running example knows, looked up by `key` in the same
    mapping as peer ids: e.g. `call:mine:0`, the newest call id the sender was told it is
    in (tests/unit/test_fuzz_hub.py's GroupWorld says which keys it answers)."""

    key: str

    def __repr__(self) -> str:
        return f"<{self.key}>"


def resolve(value: Any, ids: Mapping[str, Any]) -> Any:
    if isinstance(value, Ref):
        return ids[value.role]
    if isinstance(value, Slot):
        return ids[value.key]
    if isinstance(value, dict):
        return {key: resolve(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, ids) for item in value]
    return value


@dataclass(frozen=True)
class JsonFrame:
    value: Any
    ascii: bool = True

    def render(self, ids: Mapping[str, Any]) -> str | bytes:
        return json.dumps(resolve(self.value, ids), ensure_ascii=self.ascii)


@dataclass(frozen=True)
class TextFrame:
    text: str

    def render(self, ids: Mapping[str, Any]) -> str | bytes:
        return self.text


@dataclass(frozen=True)
class SplicedFrame:
    """A JSON message with a few characters inserted or the tail cut: almost-JSON."""

    value: Any
    at: int
    junk: str
    cut: bool

    def render(self, ids: Mapping[str, Any]) -> str | bytes:
        text = json.dumps(resolve(self.value, ids))
        i = self.at % (len(text) + 1)
        return text[:i] + self.junk + ("" if self.cut else text[i:])


@dataclass(frozen=True)
class DeepFrame:
    """Nesting `depth` levels deep: the whole frame, or a field of a relay to `target`."""

    depth: int
    opener: str  # "[" or '{"k":'
    where: str  # "top" | "data" | "candidate" | "message"
    target: Ref

    def nest(self) -> str:
        closer = "]" if self.opener == "[" else "}"
        return self.opener * self.depth + "1" + closer * self.depth

    def render(self, ids: Mapping[str, Any]) -> str | bytes:
        target, nest = json.dumps(ids[self.target.role]), self.nest()
        if self.where == "top":
            return nest
        if self.where == "candidate":
            data = '{"target":' + target + ',"candidate":{"candidate":"c","x":' + nest + "}}"
            return '{"type":"icecandidate","data":' + data + "}"
        if self.where == "message":  # outside `data`: not part of what is relayed
            return '{"type":"hangup","data":{"target":' + target + '},"x":' + nest + "}"
        return '{"type":"hangup","data":{"target":' + target + ',"x":' + nest + "}}"


@dataclass(frozen=True)
class BinaryFrame:
    data: bytes

    def render(self, ids: Mapping[str, Any]) -> str | bytes:
        return self.data


Frame = JsonFrame | TextFrame | SplicedFrame | DeepFrame | BinaryFrame


def json_values(refs: st.SearchStrategy[Ref]) -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        # orjson (and every JavaScript client) reads integers beyond 64 bits as doubles;
        # see `strict_loads`. Inside that range values must come back exactly.
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
        | refs
    )
    keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=8)
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=16,
    )


def names() -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(NASTY_CHARS) | st.characters(), max_size=80)


def message_dicts(refs: st.SearchStrategy[Ref]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects shaped like real messages, with random field types."""
    anyj = json_values(refs)
    ids = refs | st.text(max_size=130) | anyj
    candidate = (
        st.none()
        | st.fixed_dictionaries(
            {"candidate": st.text(max_size=40) | anyj},
            optional={
                "sdpMid": st.none() | st.text(max_size=4) | anyj,
                "sdpMLineIndex": st.none() | st.integers(-2, 3) | st.booleans() | anyj,
                "usernameFragment": st.text(max_size=8),
            },
        )
        | anyj
    )
    data = (
        st.fixed_dictionaries(
            {},
            optional={
                "target": ids,
                "source": ids,
                "id": ids,
                "sdp": st.text(max_size=60) | anyj,
                "type": st.sampled_from(["offer", "answer", "pranswer", "rollback"]) | anyj,
                "candidate": candidate,
                "reason": st.sampled_from(["declined", "busy", "timeout"]) | st.text(max_size=80) | anyj,
                "name": names() | anyj,
                "remove": anyj,
                "kind": anyj,
                "token": anyj,
            },
        )
        | anyj
    )
    # `leave` ends the attacker's example (GroupWorld in tests/unit/test_fuzz_hub.py sends it).
    kinds = (
        st.sampled_from((*sorted(CLIENT_TYPES - {"leave"}), *SERVER_TYPES, *OTHER_TYPES))
        | st.text(max_size=50)
        | anyj
    )
    return st.fixed_dictionaries(
        {"type": kinds}, optional={"data": data, "source": ids, "target": ids, "id": ids}
    )


def valid_relays(refs: st.SearchStrategy[Ref]) -> st.SearchStrategy[dict[str, Any]]:
    """Well-formed relays and identifies, with spoofed sender fields and extra junk."""
    anyj = json_values(refs)
    spoof = st.fixed_dictionaries({}, optional={"source": refs | anyj, "id": refs | anyj})
    extra = st.dictionaries(st.text(max_size=6).filter(lambda k: k not in FIELD_NAMES), anyj, max_size=3)
    candidate = st.none() | st.fixed_dictionaries(
        {"candidate": st.text(max_size=40)},
        optional={"sdpMid": st.none() | st.text(max_size=3), "sdpMLineIndex": st.none() | st.integers(0, 3)},
    )
    reason = st.fixed_dictionaries({}, optional={"reason": st.sampled_from(["declined", "busy", "timeout"])})
    bodies = {
        "offer": st.fixed_dictionaries({"sdp": st.text(max_size=60)}, optional={"type": st.just("offer")}),
        "accept": st.fixed_dictionaries({"sdp": st.text(max_size=60)}, optional={"type": st.just("answer")}),
        "reject": reason,
        "hangup": reason,
        "icecandidate": st.fixed_dictionaries({"candidate": candidate}),
        "ringing": st.fixed_dictionaries({}),
        "space-move": st.fixed_dictionaries(
            {"code": space_codes() | bad_space_codes() | st.text(max_size=20)}
        ),
    }

    def build(
        kind: str, target: Ref, body: dict[str, Any], spoofed: dict[str, Any], junk: dict[str, Any]
    ) -> Any:
        return {"type": kind, "data": {**junk, **body, **spoofed, "target": target}}

    listed = refs.filter(lambda ref: ref.role not in ("A", "U", "R"))  # mostly deliverable
    relays = st.sampled_from(RELAY_TYPES).flatmap(
        lambda kind: st.builds(build, st.just(kind), listed | refs, bodies[kind], spoof, extra)
    )
    identify = st.builds(
        lambda name, claimed: {"type": "identify", "data": {"id": claimed, "name": name}},
        names() | st.sampled_from(["alice", "bob", " x ", "Bob\u202e", "a" * 64, "a" * 65]),
        refs | st.none(),
    )
    return relays | identify


# --- every client message type, well-formed and near misses, from the server's tables -----

# The data fields each non-relay client type reads (protocol.parse: _identify, _ping,
# Invite/Join/LeaveCall); a relay's are `target` plus protocol.RELAY_FIELDS.
OTHER_FIELDS: dict[str, tuple[str, ...]] = {
    "identify": ("name", "id", "caps", "space"),
    "ping": ("t",),
    "leave": (),
    "invite": ("target", "call"),
    "join": ("call",),
    "leave-call": ("call",),
}
# Without these the parser refuses the message (bad-message).
REQUIRED: dict[str, tuple[str, ...]] = {
    "identify": ("name",),
    "invite": ("target", "call"),
    "join": ("call",),
    "leave-call": ("call",),
    **{kind: ("target",) for kind in protocol.RELAY_TYPES},
    "offer": ("target", "sdp"),
    "accept": ("target", "sdp"),
    "icecandidate": ("target", "candidate"),
    "space-move": ("target", "code"),
}
SDP_TYPES = {"offer": "offer", "accept": "answer"}  # data.type of the relays that carry an SDP
# The reasons of docs/protocol.md §2's table (the server checks only their length).
REASONS = (
    "declined", "busy", "full", "timeout", "left", "cancelled", "error", "hangup", "shutdown", "ice-failed",
)  # fmt: skip
# Space codes (docs/protocol.md §11) from the server's alphabet and lengths: the shortest, the
# longest, the browser's 8 characters; compared without case, so lower case is the same space.
SPACE_POOL = (
    protocol.SPACE_ALPHABET[: protocol.SPACE_MIN_LENGTH],
    protocol.SPACE_ALPHABET[-protocol.SPACE_MAX_LENGTH :],
    "K7M2QXPA",
)
NOT_IN_SPACE_ALPHABET = "".join(
    sorted(set(string.digits + string.ascii_uppercase) - set(protocol.SPACE_ALPHABET))
)


def client_fields(kind: str) -> tuple[str, ...]:
    return ("target", *protocol.RELAY_FIELDS[kind]) if kind in protocol.RELAY_TYPES else OTHER_FIELDS[kind]


def space_codes() -> st.SearchStrategy[str]:
    """Valid codes: mostly a few shared ones (so peers meet), sometimes any."""
    pool = st.sampled_from(SPACE_POOL)
    alphabet = protocol.SPACE_ALPHABET + protocol.SPACE_ALPHABET.lower()
    anything = st.text(alphabet, min_size=protocol.SPACE_MIN_LENGTH, max_size=protocol.SPACE_MAX_LENGTH)
    return pool | pool.map(str.lower) | anything


def bad_space_codes() -> st.SearchStrategy[Any]:
    """Near misses of a code: one character short or long, a letter outside the alphabet,
    separators, a lookalike, not a string (`null` is valid: the open network)."""
    alphabet = protocol.SPACE_ALPHABET
    short, long = protocol.SPACE_MIN_LENGTH - 1, protocol.SPACE_MAX_LENGTH + 1
    return st.one_of(
        st.text(alphabet, min_size=0, max_size=short),
        st.text(alphabet, min_size=long, max_size=long + 3),
        st.builds(
            lambda code, bad, at: code[: at % len(code)] + bad + code[at % len(code) + 1 :],
            st.sampled_from(SPACE_POOL),
            st.sampled_from(NOT_IN_SPACE_ALPHABET + NOT_IN_SPACE_ALPHABET.lower() + "-_ .\u041a"),
            st.integers(0, 20),
        ),
        st.sampled_from([1234, 2345.0, True, [SPACE_POOL[0]], {"code": SPACE_POOL[0]}, ""]),
    )


@dataclass(frozen=True)
class Vocabulary:
    """What the well-formed fields are made of, for one kind of example: peer ids (real,
    symbolic `Ref`s, or strange), call ids (literal, or `Slot`s the example resolves),
    names, capabilities and space codes."""

    targets: st.SearchStrategy[Any]
    calls: st.SearchStrategy[Any]
    names: st.SearchStrategy[Any]
    caps: st.SearchStrategy[Any]
    spaces: st.SearchStrategy[Any]


def _well(kind: str, field: str, words: Vocabulary) -> st.SearchStrategy[Any]:
    candidate = st.fixed_dictionaries(
        {
            "candidate": st.sampled_from(["candidate:1 1 udp 1 192.0.2.1 9 typ host", ""])
            | st.text(max_size=30)
        },
        optional={
            "sdpMid": st.none() | st.sampled_from(["0", "1"]),
            "sdpMLineIndex": st.none() | st.integers(0, 3),
        },
    )
    table: dict[str, st.SearchStrategy[Any]] = {
        "target": words.targets,
        "call": words.calls,
        "type": st.just(SDP_TYPES.get(kind, "")),
        "sdp": st.just("v=0\r\n") | st.text(max_size=40),
        "link": st.just(protocol.DATA_LINK),
        "rejoin": st.booleans(),
        "reason": st.sampled_from(REASONS) | st.text(max_size=protocol.MAX_REASON_LENGTH),
        "candidate": st.none() | candidate,
        "code": space_codes(),
        "removed": words.targets,
        "name": words.names,
        "id": words.targets | st.none(),
        "caps": words.caps,
        "space": words.spaces,
        "t": st.none() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False),
    }
    return table[field]


def _near(kind: str, field: str) -> st.SearchStrategy[Any]:
    long_id = "x" * (protocol.MAX_ID_LENGTH + 1)
    too_long_name = "n" * (HubLimits().max_name_length + 1)
    table: dict[str, st.SearchStrategy[Any]] = {
        "target": st.sampled_from(["", long_id, 7, None, [], {}, True]),
        "call": st.sampled_from(["", "c" * (protocol.MAX_CALL_ID_LENGTH + 1), 7, None, ["c"], True]),
        "type": st.sampled_from(
            [
                *(t for t in SDP_TYPES.values() if t != SDP_TYPES.get(kind)),
                "pranswer",
                "rollback",
                "",
                None,
                1,
            ]
        ),
        "sdp": st.sampled_from([None, 0, ["v=0"], {"sdp": "v=0"}, False]),
        "link": st.sampled_from(
            ["call", "", protocol.DATA_LINK.upper(), protocol.DATA_LINK + " ", 1, None, True]
        ),
        "rejoin": st.sampled_from([None, "yes", 1, {}]),  # not checked: relayed as it is
        "reason": st.sampled_from(["r" * (protocol.MAX_REASON_LENGTH + 1), 5, [], {}, True]),
        "candidate": st.sampled_from(
            [
                {"candidate": 5},
                {"sdpMid": "0"},
                {"candidate": "c", "sdpMid": 0},
                {"candidate": "c", "sdpMLineIndex": -1},
                {"candidate": "c", "sdpMLineIndex": True},
                {"candidate": "c", "sdpMLineIndex": 1.5},
                "candidate:1",
                [],
                0,
            ]
        ),
        "code": bad_space_codes(),
        "removed": st.sampled_from(["", long_id, 5, [], True]),
        "name": st.sampled_from(["", " ", "\u200b\u202e", too_long_name, 5, None, [], {"name": "Bob"}]),
        "id": st.sampled_from([5, [], {}, True]),
        "caps": st.sampled_from([protocol.GROUP, {protocol.GROUP: True}, 5, True]),
        "space": bad_space_codes(),
        "t": st.sampled_from(["5", True, False, [], {}]),
    }
    return table[field]


def well_formed(kind: str, words: Vocabulary) -> st.SearchStrategy[dict[str, Any]]:
    """`kind` as a client sends it: its required fields, some of the optional ones."""
    fields = client_fields(kind)
    needed = {f: _well(kind, f, words) for f in fields if f in REQUIRED.get(kind, ())}
    optional = {f: _well(kind, f, words) for f in fields if f not in needed}
    return st.fixed_dictionaries(needed, optional=optional).map(lambda data: {"type": kind, "data": data})


def near_miss(kind: str, words: Vocabulary) -> st.SearchStrategy[dict[str, Any]]:
    """`kind` one step from valid: a field of the wrong type, length or value; a required
    field missing; `data` not an object; the type misspelt."""
    fields = client_fields(kind)
    misspelt = [
        t for t in (kind.upper(), kind + " ", kind.replace("-", "_"), kind[:-1], kind.title()) if t != kind
    ]
    mutations: list[st.SearchStrategy[Any]] = [
        st.tuples(st.just("data"), st.sampled_from([None, [], "data", 1])),
        st.tuples(st.just("type"), st.sampled_from(misspelt)),
    ]
    mutations += [st.tuples(st.just("set"), st.just(f), _near(kind, f)) for f in fields]
    mutations += [st.tuples(st.just("drop"), st.just(f)) for f in REQUIRED.get(kind, ())]

    def apply(message: dict[str, Any], mutation: tuple[Any, ...]) -> dict[str, Any]:
        what, *args = mutation
        data = dict(message["data"])
        if what == "data":
            return {"type": kind, "data": args[0]}
        if what == "type":
            return {"type": args[0], "data": data}
        if what == "set":
            data[args[0]] = args[1]
        else:
            data.pop(args[0], None)
        return {"type": kind, "data": data}

    return st.builds(apply, well_formed(kind, words), st.one_of(mutations))


def client_messages(
    words: Vocabulary, kinds: frozenset[str] = CLIENT_TYPES
) -> st.SearchStrategy[dict[str, Any]]:
    """Every client type in `kinds`, well-formed (twice as often) or a near miss."""
    ordered = sorted(kinds)
    return st.one_of(
        [well_formed(kind, words) for kind in ordered]
        + [well_formed(kind, words) for kind in ordered]
        + [near_miss(kind, words) for kind in ordered]
    )


def attacker_words(refs: st.SearchStrategy[Ref]) -> Vocabulary:
    """A lone attacker's vocabulary: real and strange ids, any call id, nasty names."""
    anyj = json_values(refs)
    listed = refs.filter(lambda ref: ref.role not in ("A", "U", "R"))  # mostly deliverable
    caps = st.lists(
        st.sampled_from([protocol.GROUP, protocol.DATA, "future", ""]) | st.text(max_size=40), max_size=20
    )
    return Vocabulary(
        targets=listed | refs | st.text(max_size=20),
        calls=st.just("c0ffee") | st.text(min_size=1, max_size=protocol.MAX_CALL_ID_LENGTH),
        names=st.sampled_from(["Mallory", "mallory", "Bob"]) | names(),
        caps=caps | anyj,
        spaces=st.none() | space_codes(),
    )


# Import-time checks: a client type or relay field the server gains fails here until it has
# strategies (a KeyError from _well/_near), instead of going unfuzzed.
assert set(OTHER_FIELDS) == protocol.CLIENT_TYPES - protocol.RELAY_TYPES, (
    "a new client type needs fields here"
)
assert set(SDP_TYPES) == {k for k, fields in protocol.RELAY_FIELDS.items() if "type" in fields}
_PROBE = Vocabulary(st.none(), st.none(), st.none(), st.none(), st.none())
for _kind in sorted(protocol.CLIENT_TYPES):
    for _field in client_fields(_kind):
        _well(_kind, _field, _PROBE)
        _near(_kind, _field)


def frames(roles: tuple[str, ...], binary: bool = True) -> st.SearchStrategy[Frame]:
    refs = st.sampled_from([Ref(role) for role in roles])
    messages = message_dicts(refs) | valid_relays(refs)
    every_type = client_messages(attacker_words(refs), CLIENT_TYPES - {"leave"})
    depths = st.sampled_from([252, 253, 254, 255, 256, 300, 1023, 1024, 1025]) | st.integers(1, 1100)
    wellformed = st.builds(JsonFrame, valid_relays(refs), st.booleans())
    options: list[st.SearchStrategy[Any]] = [
        wellformed,
        wellformed,
        st.builds(JsonFrame, every_type, st.booleans()),
        st.builds(JsonFrame, messages, st.booleans()),
        st.builds(JsonFrame, json_values(refs), st.booleans()),
        st.builds(TextFrame, st.text()),
        st.builds(TextFrame, st.text(st.sampled_from('{}[]",:0123456789.eE-+ \\truefalsnl'), max_size=60)),
        st.builds(SplicedFrame, messages, st.integers(0, 400), st.text(max_size=3), st.booleans()),
        st.builds(
            DeepFrame,
            depths,
            st.sampled_from(["[", '{"k":']),
            st.sampled_from(["data", "candidate", "message"]),
            refs,
        ),
        st.builds(DeepFrame, st.integers(1, 10000), st.sampled_from(["[", '{"k":']), st.just("top"), refs),
    ]
    if binary:
        options.append(st.builds(BinaryFrame, st.binary(max_size=64)))
    return st.one_of(options)


# --- oracles ----------------------------------------------------------------------------


def note(label: str) -> None:
    """Count what the examples exercised (--hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(label)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _int(text: str) -> int | float:
    value = int(text)
    return value if -(2**63) <= value < 2**64 else float(value)


def _unicode_only(value: Any) -> None:
    """Escaped lone surrogates (`"\\ud800"`) are grammatical JSON but not Unicode text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")  # UnicodeEncodeError is a ValueError
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def strict_loads(text: str) -> Any:
    """Interoperable JSON only: no NaN/Infinity, no overflowing numbers, no lone surrogates."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 3000))
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite, parse_int=_int)
    finally:
        sys.setrecursionlimit(old)
    _unicode_only(value)
    return value


def parses(text: str) -> bool:
    try:
        strict_loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def stamped(kind: str, data: dict[str, Any], source: str) -> dict[str, Any]:
    """What the target must receive for `{"type": kind, "data": data}` from `source`."""
    out = {key: data[key] for key in FORWARDED[kind] if key in data}
    out["source"] = source
    out["target"] = data["target"]
    if kind == "icecandidate":
        out["id"] = source
    if kind == "space-move":  # travels in its one spelling (upper case)
        out["code"] = protocol.clean_space(data["code"])
    return {"type": kind, "data": out}


def is_leave(payload: str | bytes) -> bool:
    """A `leave` the server would act on: it ends the sender (only GroupWorld sends one)."""
    if not isinstance(payload, str) or ("leave" not in payload and "\\u" not in payload):
        return False  # (a cheap test first: most frames are not JSON, or deep)
    try:
        message = strict_loads(payload)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(message, dict) and message.get("type") == "leave" and isinstance(message.get("data"), dict)
    )


def check_error(message: Any, sent: str | bytes) -> str:
    """A well-formed `error` whose `ref`, if any, echoes the offending type. Returns the code."""
    assert isinstance(message, dict) and set(message) == {"type", "data"}, message
    assert message["type"] == "error", message
    data = message["data"]
    assert isinstance(data, dict) and {"code", "message"} <= set(data) <= {
        "code",
        "message",
        "ref",
        "target",
    }, message
    assert data["code"] in ERROR_CODES, message
    assert isinstance(data["message"], str) and data["message"], message
    if "ref" in data:
        assert isinstance(data["ref"], str), message
    if isinstance(sent, str) and data["code"] not in ("bad-json", "rate-limited"):
        parsed = strict_loads(sent)  # the server understood it, so it is JSON
        if isinstance(parsed, dict) and isinstance(parsed.get("type"), str):
            assert data.get("ref") == parsed["type"][:40], (message, sent[:200])
    if data["code"] == "bad-json":
        assert isinstance(sent, str)
        deep = sent.count("[") + sent.count("{") > 1000
        assert deep or not parses(sent), f"valid JSON refused as bad-json: {sent[:200]!r}"
    return str(data["code"])


def well_formed_name(name: str, raw: Any) -> None:
    assert isinstance(raw, str)
    assert 1 <= len(name) <= 64 and name == name.strip(), repr(name)
    assert not any(unicodedata.category(ch) == "Cc" for ch in name), repr(name)
    assert not any(ch in INVISIBLE for ch in name), repr(name)
    assert set(name) <= set(unicodedata.normalize("NFC", raw)) | {" "}, (name, raw)
