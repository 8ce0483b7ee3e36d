"""Property-based fuzzing of the signalling core (issue 3, "Tests that must exist").

One attacker peer sends arbitrary input: JSON values of every shape, objects shaped like
real messages with random field types and targets (real peer ids included), broken JSON,
deep nesting, arbitrary text and binary frames. Whatever it sends:

* the hub never raises and the socket server keeps answering;
* nothing reaches anyone but the attacker itself (errors) or the exact target it
  addressed, and only if that target is identified (an `identify` may also announce
  the attacker's own name, which is the protocol);
* every relayed frame is the attacker's `data` unchanged except `source` (and `id` on
  `icecandidate`) stamped with the attacker's real id, and `target`;
* every error is a well-formed `error` with a code from PROTOCOL.md §2;
* relays between two honest peers interleaved with the attack arrive exactly once, in
  order, unchanged apart from stamping.

The checks are model-free: the attacker's own replies say whether a frame was refused
(one `error`, then nothing may have been delivered anywhere) or accepted (then it must be
strict JSON of a client type, and exactly the addressed peer got exactly the stamped copy).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import secrets
import sys
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from server.hub import CLOSE_POLICY, PENDING_LIMIT, Hub, HubLimits, Outbox, Peer

ERROR_CODES = frozenset(
    {"bad-json", "bad-message", "unknown-type", "not-identified", "unknown-peer", "rate-limited", "bad-name"}
)
RELAY_TYPES = ("offer", "accept", "reject", "icecandidate", "hangup")
CLIENT_TYPES = frozenset({*RELAY_TYPES, "identify"})
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
    out = {**data, "source": source}
    if kind == "icecandidate":
        out["id"] = source
    return {"type": kind, "data": out}


def check_error(message: Any, sent: str | bytes) -> str:
    """A well-formed `error` whose `ref`, if any, echoes the offending type. Returns the code."""
    assert isinstance(message, dict) and set(message) == {"type", "data"}, message
    assert message["type"] == "error", message
    data = message["data"]
    assert isinstance(data, dict) and {"code", "message"} <= set(data) <= {"code", "message", "ref"}, message
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
    assert set(name) <= set(raw) | {" "}, (name, raw)


# --- (a) the hub itself, with fake connections and a fake clock ----------------------------


class FakeConn:
    def __init__(self, label: str) -> None:
        self.label = label

    async def send_text(self, text: str) -> None:  # pragma: no cover - the hub never sends
        raise AssertionError("the hub returns frames; it never sends them itself")

    async def close(self, code: int, reason: str) -> None:  # pragma: no cover
        raise AssertionError("the hub returns closes; it never closes by itself")

    def __repr__(self) -> str:
        return f"<conn {self.label}>"


UNIT_ROLES = ("A", "B", "C", "D", "U", "G", "R")
# A attacker; B, C, D identified and connected; U connected, never identified;
# G identified, socket gone (grace period: relays to it are queued); R left for good.


@dataclass
class Snapshot:
    a_name: str | None
    a_listed: bool
    pending: list[str]


class HubWorld:
    def __init__(self, limits: HubLimits, attacker_identified: bool) -> None:
        self.now = 1000.0
        self.hub = Hub(limits, "test-version", {"iceServers": []}, lambda: self.now)
        self.conns: dict[str, FakeConn] = {}
        self.peers: dict[str, Peer] = {}
        for role in UNIT_ROLES:
            conn = FakeConn(role)
            peer, out, resumed = self.hub.connect(conn)
            assert not resumed and [c for c, _ in out.sends] == [conn]
            self.conns[role], self.peers[role] = conn, peer
        self.ids = {role: peer.id for role, peer in self.peers.items()}
        self.tokens = {role: peer.token for role, peer in self.peers.items()}
        self.names: dict[str, str] = {}
        for role in ("R", "B", "C", "D", "G", *(["A"] if attacker_identified else [])):
            self.names[role] = f"name of {role}"
            out = self.hub.receive(
                self.peers[role], json.dumps({"type": "identify", "data": {"name": self.names[role]}})
            )
            assert all(json.loads(t)["type"] == "peer" for _, t in out.sends) and not out.closes
        self.hub.disconnect(self.peers["R"], self.conns["R"])
        self.now += limits.resume_grace + 1
        self.hub.expire()
        assert self.hub.peer(self.ids["R"]) is None
        del self.names["R"]
        assert not self.hub.disconnect(self.peers["G"], self.conns["G"])
        self.role_of_conn = {id(conn): role for role, conn in self.conns.items()}
        self.role_of_id = {peer_id: role for role, peer_id in self.ids.items()}
        self.for_g: list[dict[str, Any]] = []  # what G must get on resume
        self.honest_rounds = 0

    @property
    def attacker(self) -> Peer:
        return self.peers["A"]

    def snapshot(self) -> Snapshot:
        a = self.attacker
        return Snapshot(a.name, a.listed_on_socket, list(self.peers["G"].pending))

    def decode_sends(self, out: Outbox) -> list[tuple[str, Any]]:
        sends = []
        for conn, text in out.sends:
            role = self.role_of_conn.get(id(conn))
            assert role is not None and conn is self.conns[role], (
                f"frame to a connection the hub never had: {conn}"
            )
            assert role in ("A", "B", "C", "D"), (
                f"frame to {role}, which has no live identified socket: {text}"
            )
            for owner, token in self.tokens.items():
                assert token not in text, f"{owner}'s resume token leaked to {role}"
            sends.append((role, strict_loads(text)))
        return sends

    def attack(self, frame: Frame, throttled_ok: bool = False) -> bool:
        """Send one attacker frame and check what the hub does with it. True if it asked to
        close the attacker's socket (rate limit)."""
        payload = frame.render(self.ids)
        snap = self.snapshot()
        if isinstance(payload, bytes):
            out = self.hub.receive_binary(self.attacker)
        else:
            out = self.hub.receive(self.attacker, payload)
        closed = self.check(payload, out, snap, throttled_ok)
        self.check_invariants()
        return closed

    def check(self, payload: str | bytes, out: Outbox, snap: Snapshot, throttled_ok: bool) -> bool:
        a, g = self.attacker, self.peers["G"]
        sends = self.decode_sends(out)
        if out.closes:
            assert throttled_ok, f"close without rate limiting: {out.closes}"
            assert not sends and len(out.closes) == 1, out
            conn, code, _ = out.closes[0]
            assert conn is self.conns["A"] and code == CLOSE_POLICY, out.closes
            note("attacker closed for rate abuse")
            return True
        errors = [m for role, m in sends if role == "A" and m.get("type") == "error"]
        if errors:
            assert len(sends) == 1, f"an error plus other frames: {sends}"
            code = check_error(errors[0], payload)
            note(f"error {code}")
            assert code != "rate-limited" or throttled_ok
            assert a.name == snap.a_name and list(g.pending) == snap.pending
            if code == "not-identified":
                assert snap.a_name is None
            if code == "unknown-peer":
                assert isinstance(payload, str)
                target = strict_loads(payload)["data"]["target"]
                assert self.role_of_id.get(target) not in ("B", "C", "D", "G"), "a listed peer is 'unknown'"
            return False
        if throttled_ok and not sends and a.name == snap.a_name and list(g.pending) == snap.pending:
            return False  # dropped by the rate limit (or a no-op), nothing went anywhere
        assert isinstance(payload, str), f"binary frame accepted: {sends}"
        try:
            message = strict_loads(payload)
        except (ValueError, RecursionError):
            raise AssertionError(
                f"the hub acted on a frame that is not JSON: {payload[:200]!r} -> {sends}"
            ) from None
        assert isinstance(message, dict) and message.get("type") in CLIENT_TYPES, (payload[:200], sends)
        data = message.get("data")
        assert isinstance(data, dict), (payload[:200], sends)
        if message["type"] == "identify":
            self.check_identify(sends, snap, data)
            return False
        note(f"relayed {message['type']}")
        assert snap.a_name is not None, "an unidentified peer relayed"
        role = self.role_of_id.get(data.get("target"))
        assert role in ("B", "C", "D", "G"), f"relayed to {role}: {sends}"
        expected = stamped(message["type"], data, a.id)
        if role == "G":
            note("relay queued for a peer in its grace period")
            assert sends == [], sends
            assert len(g.pending) == min(len(snap.pending) + 1, PENDING_LIMIT)
            assert strict_loads(g.pending[-1]) == expected
            self.for_g.append(expected)
        else:
            assert sends == [(role, expected)], f"expected exactly {expected} to {role}, got {sends}"
        return False

    def check_identify(self, sends: list[tuple[str, Any]], snap: Snapshot, data: dict[str, Any]) -> None:
        a = self.attacker
        name = a.name
        assert name is not None
        well_formed_name(name, data.get("name"))
        to_attacker = [m for role, m in sends if role == "A"]
        if snap.a_listed:
            assert to_attacker == [], to_attacker
        else:  # first identify: the attacker learns who is here, each exactly once
            listed = {self.ids[r]: self.names[r] for r in ("B", "C", "D", "G")}
            got = {}
            for m in to_attacker:
                assert m["type"] == "peer" and set(m["data"]) == {"id", "name", "kind"}, m
                assert m["data"]["id"] not in got, m
                got[m["data"]["id"]] = m["data"]["name"]
            assert got == listed
        others = [(role, m) for role, m in sends if role != "A"]
        if name == snap.a_name:
            assert others == [], others
        else:
            announcement = {"type": "peer", "data": {"id": a.id, "name": name, "kind": "browser"}}
            assert sorted(role for role, _ in others) == ["B", "C", "D"], others
            assert all(m == announcement for _, m in others), others
        note("identify")

    def check_invariants(self) -> None:
        hub, a = self.hub, self.attacker
        assert hub.peer(a.id) is a and a.conn is self.conns["A"]
        expected = [(self.ids["A"], a.name)] if a.name is not None else []
        expected += [(self.ids[r], self.names[r]) for r in ("B", "C", "D", "G")]
        assert [(p.id, p.name) for p in hub.listed()] == expected
        assert hub.connections == 5
        assert self.peers["U"].name is None and self.peers["G"].conn is None

    def honest_round(self) -> None:
        """B -> C offer, C -> B icecandidate: each delivered exactly once, unchanged."""
        i = self.honest_rounds
        self.honest_rounds += 1
        b, c = self.peers["B"], self.peers["C"]
        offer = {"type": "offer", "sdp": f"v=0 honest {i}", "target": c.id, "source": b.id}
        candidate = {
            "candidate": f"candidate:{i} 1 udp 1 192.0.2.1 9 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
        for sender, kind, data, receiver in (
            (b, "offer", offer, "C"),
            (c, "icecandidate", {"id": c.id, "target": b.id, "candidate": candidate}, "B"),
        ):
            out = self.hub.receive(sender, json.dumps({"type": kind, "data": data}))
            assert not out.closes
            assert self.decode_sends(out) == [(receiver, stamped(kind, data, sender.id))]

    def finish(self) -> None:
        """G resumes and gets exactly the relays addressed to it (the newest PENDING_LIMIT)."""
        conn = FakeConn("G again")
        peer, out, resumed = self.hub.connect(conn, self.tokens["G"])
        assert resumed and peer is self.peers["G"]
        assert all(c is conn for c, _ in out.sends)
        frames = [strict_loads(text) for _, text in out.sends]
        assert frames[0]["type"] == "ready" and frames[0]["id"] == self.ids["G"]
        assert frames[1:] == self.for_g[-PENDING_LIMIT:]


FUZZ_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.unit
@FUZZ_SETTINGS
@given(
    identified=st.sampled_from([True, True, True, False]),
    attack=st.lists(frames(UNIT_ROLES), min_size=1, max_size=12),
)
def test_hub_attacker_input_never_raises_misroutes_or_disturbs(identified: bool, attack: list[Frame]) -> None:
    world = HubWorld(GENEROUS, attacker_identified=identified)
    for frame in attack:
        world.attack(frame)
        world.honest_round()
    world.finish()


@pytest.mark.unit
@settings(FUZZ_SETTINGS, max_examples=150)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 0.001, 0.05, 0.2, 1.0]) | st.floats(0.0, 2.5),
            st.integers(1, 20),
            frames(UNIT_ROLES),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_rate_limited_attacker_never_misroutes(steps: list[tuple[float, int, Frame]]) -> None:
    world = HubWorld(HubLimits(rate_limit=5.0, rate_burst=4, resume_grace=60.0), attacker_identified=True)
    last_honest = world.now
    for dt, repeat, frame in steps:
        world.now += dt
        for _ in range(repeat):
            if world.attack(frame, throttled_ok=True):
                # The adapter closes the socket; the peer then enters its grace period quietly.
                assert not world.hub.disconnect(world.attacker, world.conns["A"])
                world.finish()
                return
        if world.now - last_honest >= 0.5:  # the honest peers stay within their own limit
            world.honest_round()
            last_honest = world.now
    world.finish()


@pytest.mark.unit
@pytest.mark.parametrize("depth", [1, 100, 252, 253, 254, 300, 1024, 1025, 5000])
@pytest.mark.parametrize("where", ["data", "candidate", "message", "top"])
def test_deeply_nested_frames_never_raise(depth: int, where: str) -> None:
    """Regression oracle for nesting: refused with an error or relayed intact, never a crash.
    (orjson parses 1024 levels but serializes only ~254.)"""
    world = HubWorld(GENEROUS, attacker_identified=True)
    world.attack(DeepFrame(depth, "[", where, Ref("B")))
    world.honest_round()
    world.finish()


# --- (b) the same over real TLS WebSockets ---------------------------------------------------


def loads_deep(text: str) -> Any:
    """Parse a server frame of any depth it can produce (orjson: up to 1024 levels) without
    touching the recursion limit, which the hypothesis thread may be adjusting meanwhile."""
    try:
        return json.loads(text)
    except RecursionError:
        import orjson  # the server's own parser; only here, for frames too deep for `json`

        return orjson.loads(text)


class ClientClosed(AssertionError):
    pass


class WsClient:
    """Reads every frame in the background into `frames` (parsed JSON)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, label: str) -> None:
        self.ws = ws
        self.label = label
        self.frames: list[dict[str, Any]] = []
        self.strange: list[Any] = []  # non-JSON or binary frames from the server
        self.closed = False
        self.close_code: int | None = None
        self.id = ""
        self._changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type is aiohttp.WSMsgType.CLOSE:  # the code the server sent (aiohttp may
                    self.close_code = msg.data  # report 1006 after failing to answer it)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    break
                if msg.type is aiohttp.WSMsgType.TEXT:
                    try:
                        frame = loads_deep(msg.data)
                    except ValueError:
                        self.strange.append(msg.data)
                    else:
                        if isinstance(frame, dict) and isinstance(frame.get("type"), str):
                            self.frames.append(frame)
                        else:
                            self.strange.append(frame)
                else:
                    self.strange.append((msg.type, msg.data))
                self._notify()
        finally:
            self.closed = True
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], start: int = 0, within: float = 5.0
    ) -> int:
        """Index of the first frame at or after `start` that satisfies `predicate`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        i = start
        while True:
            while i < len(self.frames):
                if predicate(self.frames[i]):
                    return i
                i += 1
            if self.closed:
                raise ClientClosed(
                    f"{self.label}: socket closed (code {self.close_code or self.ws.close_code})"
                )
            changed = self._changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.label}: timed out; frames since {start}: {self.frames[start:][:10]}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def send(self, message: Any) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))


def is_type(kind: str, **data: Any) -> Callable[[dict[str, Any]], bool]:
    def predicate(frame: dict[str, Any]) -> bool:
        d = frame.get("data")
        return (
            frame.get("type") == kind and isinstance(d, dict) and all(d.get(k) == v for k, v in data.items())
        )

    return predicate


NET_ROLES = ("A", "B", "C", "X", "U")
# A attacker; B and C ping-pong honestly; X identified bystander the attacker may address;
# Y identified bystander it never names; U connected, never identified.


@dataclass
class FuzzNet:
    session: aiohttp.ClientSession
    url: str
    hub: Hub
    nonce: str = field(default_factory=lambda: secrets.token_hex(6))
    clients: dict[str, WsClient] = field(default_factory=dict)
    dead_attackers: set[str] = field(default_factory=set)
    crashes: list[str] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    rounds: int = 0
    examples: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    y_start: int = 0

    async def connect(self, label: str) -> WsClient:
        client = WsClient(await self.session.ws_connect(self.url), label)
        await client.wait_for(lambda f: f.get("type") == "ready")
        assert client.frames[0]["type"] == "ready"
        client.id = client.frames[0]["id"]
        return client

    async def join(self, label: str) -> WsClient:
        """Connect and identify; returns once every identified client has seen the join."""
        client = await self.connect(label)
        watchers = [c for lbl, c in self.clients.items() if lbl not in ("U",) and not c.closed]
        marks = {c.label: len(c.frames) for c in watchers}
        await client.send({"type": "identify", "data": {"id": client.id, "name": f"name of {label}"}})
        for c in watchers:
            await c.wait_for(is_type("peer", id=client.id), marks[c.label])
        self.clients[label] = client
        return client

    async def setup(self) -> None:
        self.clients["U"] = await self.connect("U")
        for label in ("B", "C", "X", "Y", "A"):
            await self.join(label)
        self.y_start = len(self.clients["Y"].frames)

    def ids(self) -> dict[str, str]:
        return {label: c.id for label, c in self.clients.items()}

    def label_of(self, peer_id: Any) -> str | None:
        return next((lbl for lbl, c in self.clients.items() if c.id == peer_id), None)

    async def ping_pong(self) -> None:
        """B offers n to C, C accepts n to B, strictly alternating, until told to stop."""
        b, c = self.clients["B"], self.clients["C"]
        b_at = c_at = 0
        while not self.stop.is_set():
            sdp = f"v=0 honest {self.rounds}"
            await b.send({"type": "offer", "data": {"type": "offer", "sdp": sdp, "target": c.id}})
            c_at = await c.wait_for(is_type("offer", source=b.id, sdp=sdp), c_at) + 1
            await c.send({"type": "accept", "data": {"type": "answer", "sdp": sdp, "target": b.id}})
            b_at = await b.wait_for(is_type("accept", source=c.id, sdp=sdp), b_at) + 1
            self.rounds += 1
            await asyncio.sleep(0.002)

    async def replace_attacker(self) -> None:
        old = self.clients.pop("A")
        self.dead_attackers.add(old.id)
        await self.join("A")

    def attributable(self, receiver: WsClient, frame: dict[str, Any], current_barrier: str) -> bool:
        """Frames in a window that the attacker's last frame may have caused."""
        data = frame.get("data") if isinstance(frame.get("data"), dict) else {}
        honest_partner = {"B": ("accept", "C"), "C": ("offer", "B")}.get(receiver.label)
        if (
            honest_partner
            and frame["type"] == honest_partner[0]
            and data.get("source") == self.clients[honest_partner[1]].id
        ):
            return False  # the honest ping-pong, checked in order at the end
        if frame["type"] == "peer" and data.get("id") in self.dead_attackers:
            return False  # a crashed attacker's departure
        reason = data.get("reason")
        return not (isinstance(reason, str) and reason.endswith(self.nonce) and reason != current_barrier)

    async def attack(self, frame: Frame) -> None:
        if self.clients["A"].closed:
            await self.replace_attacker()
        self.examples += 1
        a = self.clients["A"]
        watched = [self.clients[lbl] for lbl in ("B", "C", "X")]
        k = next(self.counter)
        payload = frame.render(self.ids())
        marks = {c.label: len(c.frames) for c in watched}
        a_mark = len(a.frames)
        probe = f"probe-{k}-{self.nonce}"
        try:
            if isinstance(payload, bytes):
                await a.ws.send_bytes(payload)
            else:
                await a.ws.send_str(payload)
            await a.send({"type": probe})
            answered = await a.wait_for(is_type("error", ref=probe), a_mark)
        except (ClientClosed, ConnectionError) as exc:
            self.crashes.append(repr(payload)[:300])
            raise AssertionError(
                f"the server dropped the attacker (close code {a.close_code or a.ws.close_code}) "
                f"after {payload[:300]!r}"
            ) from exc
        replies = a.frames[a_mark:answered]
        barrier = f"barrier-{k}-{self.nonce}"
        for c in watched:
            await a.send({"type": "hangup", "data": {"target": c.id, "reason": barrier}})
        windows: dict[str, list[dict[str, Any]]] = {}
        for c in watched:
            end = await c.wait_for(is_type("hangup", source=a.id, reason=barrier), marks[c.label])
            windows[c.label] = [f for f in c.frames[marks[c.label] : end] if self.attributable(c, f, barrier)]

        assert len(replies) <= 1, f"more than one reply to one frame: {replies}"
        if replies:
            code = check_error(replies[0], payload)
            self.outcomes[f"error {code}"] += 1
            assert all(w == [] for w in windows.values()), f"refused ({code}) yet delivered: {windows}"
            if code == "unknown-peer":
                target = strict_loads(payload)["data"]["target"]
                assert self.label_of(target) not in ("B", "C", "X", "Y"), "an identified peer is 'unknown'"
            return
        assert isinstance(payload, str), "a binary frame was accepted"
        message = strict_loads(payload)
        assert isinstance(message, dict) and message.get("type") in CLIENT_TYPES, payload[:200]
        data = message["data"]
        assert isinstance(data, dict)
        if message["type"] == "identify":
            peer = self.hub.peer(a.id)
            assert peer is not None and peer.name is not None
            well_formed_name(peer.name, data.get("name"))
            announcement = {"type": "peer", "data": {"id": a.id, "name": peer.name, "kind": "browser"}}
            got = list(windows.values())
            assert got in ([[]] * 3, [[announcement]] * 3), f"identify announced as {windows}"
            self.outcomes["identify"] += 1
            return
        target = self.label_of(data.get("target"))
        assert target in ("B", "C", "X"), f"relay accepted for {target}: {payload[:200]}"
        expected = stamped(message["type"], data, a.id)
        for label, window in windows.items():
            assert window == ([expected] if label == target else []), (
                f"{label} got {window}, expected {expected}"
            )
        self.outcomes[f"relayed {message['type']}"] += 1


@pytest.mark.integration
async def test_fuzzed_client_over_tls_never_crashes_misroutes_or_disturbs(
    start_server: Any, client_ssl: Any
) -> None:
    live = await start_server(resume_grace=0.0, rate_limit=1e6, rate_burst=10**6)
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(ssl=client_ssl, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        net = FuzzNet(session, live.ws_url, live.hub)
        await net.setup()
        pinger = asyncio.create_task(net.ping_pong())

        def run(coro: Any) -> None:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
            try:
                future.result(timeout=30)
            except TimeoutError:
                future.cancel()
                raise

        @settings(
            max_examples=400,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(frame=frames(NET_ROLES))
        def attacker_sends(frame: Frame) -> None:
            run(net.attack(frame))

        try:
            await asyncio.to_thread(attacker_sends)  # hypothesis in a thread; sockets on this loop
        finally:
            net.stop.set()
            await asyncio.wait_for(pinger, 10)

        assert not net.crashes, f"the server dropped the attacker after: {net.crashes}"
        b, c, x, y, u = (net.clients[lbl] for lbl in ("B", "C", "X", "Y", "U"))
        # The honest ping-pong: every message exactly once, in order, stamped, unchanged.
        assert net.rounds > 20, f"the honest relay stalled: {net.rounds} rounds"
        offers = [f["data"] for f in c.frames if f["type"] == "offer" and f["data"].get("source") == b.id]
        accepts = [f["data"] for f in b.frames if f["type"] == "accept" and f["data"].get("source") == c.id]
        want = [f"v=0 honest {i}" for i in range(net.rounds)]
        assert offers == [{"type": "offer", "sdp": s, "target": c.id, "source": b.id} for s in want]
        assert accepts == [{"type": "answer", "sdp": s, "target": b.id, "source": c.id} for s in want]
        # Y was never addressed: it only ever hears about the attacker's name.
        attackers = net.dead_attackers | {net.clients["A"].id}
        heard = y.frames[net.y_start :]
        assert all(f["type"] == "peer" and f["data"]["id"] in attackers for f in heard), heard
        # U never identified: nothing after `ready`, ever.
        assert [f["type"] for f in u.frames] == ["ready"]
        for client in net.clients.values():
            assert not client.strange, f"{client.label} got non-protocol frames: {client.strange[:5]}"
        # X got nothing after the last barrier it saw.
        last = max(i for i, f in enumerate(x.frames) if f["type"] == "hangup")
        assert x.frames[last + 1 :] == []
        # The server still answers, and the attacker is still one of six live sockets.
        assert live.hub.connections == 6
        probe = net.clients["A"]
        mark = len(probe.frames)
        await probe.send("not json")
        await probe.wait_for(is_type("error", code="bad-json"), mark)
        relayed = sum(n for outcome, n in net.outcomes.items() if outcome.startswith("relayed"))
        assert relayed >= 10 and net.outcomes["identify"] >= 3, net.outcomes  # not vacuous
        print(
            f"\nfuzz over TLS: {net.examples} frames, {net.rounds} honest round trips, {dict(net.outcomes)}"
        )
        for client in net.clients.values():
            await client.ws.close()
