"""Hypothesis strategies and oracles shared by the fuzz tests of the signalling core
(tests/unit/test_fuzz_hub.py: the hub itself; tests/integration/test_fuzz.py: over real TLS).
See the former's docstring for what is checked and why."""

from __future__ import annotations

import json
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
RELAY_TYPES = tuple(sorted(protocol.RELAY_TYPES))
CLIENT_TYPES = frozenset({*RELAY_TYPES, "identify", "ping", "leave"})
# The fields each relay forwards (docs/protocol.md §2), besides source/target/id: the server's table.
FORWARDED = protocol.RELAY_FIELDS
SERVER_TYPES = ("ready", "peer", "error")
OTHER_TYPES = ("chat", "disconnect", "typing", "ping", "", "OFFER", "offer ", "__proto__", "constructor")
FIELD_NAMES = (
    "type", "data", "target", "source", "id", "sdp", "candidate", "sdpMid", "sdpMLineIndex",
    "reason", "name", "remove", "kind", "token", "version", "config",
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


def resolve(value: Any, ids: Mapping[str, str]) -> Any:
    if isinstance(value, Ref):
        return ids[value.role]
    if isinstance(value, dict):
        return {key: resolve(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, ids) for item in value]
    return value


@dataclass(frozen=True)
class JsonFrame:
    value: Any
    ascii: bool = True

    def render(self, ids: Mapping[str, str]) -> str | bytes:
        return json.dumps(resolve(self.value, ids), ensure_ascii=self.ascii)


@dataclass(frozen=True)
class TextFrame:
    text: str

    def render(self, ids: Mapping[str, str]) -> str | bytes:
        return self.text


@dataclass(frozen=True)
class SplicedFrame:
    """A JSON message with a few characters inserted or the tail cut: almost-JSON."""

    value: Any
    at: int
    junk: str
    cut: bool

    def render(self, ids: Mapping[str, str]) -> str | bytes:
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

    def render(self, ids: Mapping[str, str]) -> str | bytes:
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

    def render(self, ids: Mapping[str, str]) -> str | bytes:
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
    kinds = (
        st.sampled_from((*RELAY_TYPES, "identify", *SERVER_TYPES, *OTHER_TYPES)) | st.text(max_size=50) | anyj
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
            {"code": st.sampled_from(["K7M2QXPA", "k7m2qxpa", "K7M2Q0", "", "AB"]) | st.text(max_size=20)}
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


def group_and_data_messages(refs: st.SearchStrategy[Ref]) -> st.SearchStrategy[dict[str, Any]]:
    """Every client message type of docs/protocol.md beyond the original protocol, built
    from the server's own tables (protocol.RELAY_FIELDS, CALL_TYPES): relays with `call`,
    `link` and `rejoin`, `invite`/`join`/`leave-call`, `identify` with capabilities, `ping`,
    `leave` excluded (it ends the example)."""
    anyj = json_values(refs)
    call_ids = st.sampled_from(["c0ffee", "", "x" * 65]) | st.text(max_size=70) | anyj
    extras = {
        "call": call_ids,
        "link": st.sampled_from(["data", "call", ""]) | anyj,
        "rejoin": st.booleans() | anyj,
        "reason": st.sampled_from(["declined", "busy", "full", "left", "cancelled"]) | st.text(max_size=70),
        "sdp": st.text(max_size=60),
        "type": st.sampled_from(["offer", "answer"]),
        "candidate": st.none() | st.fixed_dictionaries({"candidate": st.text(max_size=40)}),
    }
    listed = refs.filter(lambda ref: ref.role not in ("A", "U", "R"))

    def relay(kind: str) -> st.SearchStrategy[dict[str, Any]]:
        fields = protocol.RELAY_FIELDS[kind]
        body = st.fixed_dictionaries({}, optional={f: extras[f] for f in fields if f in extras})
        return st.builds(lambda b, t: {"type": kind, "data": {**b, "target": t}}, body, listed | refs)

    relays = st.sampled_from(sorted(protocol.RELAY_FIELDS)).flatmap(relay)
    invite = st.builds(
        lambda t, c: {"type": "invite", "data": {"target": t, "call": c}}, listed | refs, call_ids
    )
    join = st.builds(lambda c: {"type": "join", "data": {"call": c}}, call_ids)
    leave_call = st.builds(lambda c: {"type": "leave-call", "data": {"call": c}}, call_ids)
    caps = st.lists(
        st.sampled_from([protocol.GROUP, protocol.DATA, "future", ""]) | st.text(max_size=40), max_size=20
    )
    identify = st.builds(
        lambda name, c: {"type": "identify", "data": {"name": name, "caps": c}},
        st.sampled_from(["Mallory", "mallory", "Bob"]) | names(),
        caps | anyj,
    )
    ping = st.builds(
        lambda t: {"type": "ping", "data": {"t": t}}, st.integers(0, 2**53) | st.floats(allow_nan=False)
    )
    assert {"invite", "join", "leave-call"} == protocol.CALL_TYPES  # a new type needs a strategy here
    return relays | invite | join | leave_call | identify | ping


def frames(roles: tuple[str, ...], binary: bool = True) -> st.SearchStrategy[Frame]:
    refs = st.sampled_from([Ref(role) for role in roles])
    messages = message_dicts(refs) | valid_relays(refs)
    depths = st.sampled_from([252, 253, 254, 255, 256, 300, 1023, 1024, 1025]) | st.integers(1, 1100)
    wellformed = st.builds(JsonFrame, valid_relays(refs), st.booleans())
    options: list[st.SearchStrategy[Any]] = [
        wellformed,
        wellformed,
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
    return {"type": kind, "data": out}


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
