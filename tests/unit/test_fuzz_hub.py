"""Property-based fuzzing of the signalling core, the hub itself (issue 3, "Tests that must exist";
the same over real TLS: tests/integration/test_fuzz.py).

One attacker peer sends arbitrary input: JSON values of every shape, objects shaped like
real messages with random field types and targets (real peer ids included), broken JSON,
deep nesting, arbitrary text and binary frames. Whatever it sends:

* the hub never raises and the socket server keeps answering;
* nothing reaches anyone but the attacker itself (errors) or the exact target it
  addressed, and only if that target is identified (an `identify` may also announce
  the attacker's own name, which is the protocol);
* every relayed frame is the attacker's `data` unchanged except `source` (and `id` on
  `icecandidate`) stamped with the attacker's real id, and `target`;
* every error is a well-formed `error` with a code from docs/protocol.md §3;
* relays between two honest peers interleaved with the attack arrive exactly once, in
  order, unchanged apart from stamping.

The checks are model-free: the attacker's own replies say whether a frame was refused
(one `error`, then nothing may have been delivered anywhere) or accepted (then it must be
strict JSON of a client type, and exactly the addressed peer got exactly the stamped copy).

(b) Five peers send every client type the server dispatches on (protocol.CLIENT_TYPES,
which a test holds equal to docs/protocol.md's tables), well-formed and near misses, with
1:1 calls, invitations and joins woven in so groups really form, plus drops, resumes,
leaves, removals from a space and time passing. Besides (a)'s oracles: no call has more
than max_call_size members (invitations counted) or spans two spaces, a peer is in at
most one call, a `call` frame lists existing members and reaches only them, an `invite`
only its target, nobody hears of a peer of another space, and what each member was told
last is what the hub holds. The run must generate and see accepted every client type and
form a group of three, or it fails (coverage that collapses is a failure, not a pass).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import protocol
from server.config import PROJECT_ROOT
from server.hub import CLOSE_NORMAL, CLOSE_POLICY, PENDING_LIMIT, Hub, HubLimits, Peer
from server.outbox import Outbox
from tests.support.fuzzing import (
    CLIENT_TYPES,
    GENEROUS,
    RELAY_TYPES,
    SPACE_POOL,
    DeepFrame,
    Frame,
    JsonFrame,
    Ref,
    Slot,
    Vocabulary,
    check_error,
    client_messages,
    frames,
    is_leave,
    note,
    stamped,
    strict_loads,
    well_formed_name,
)

# --- (a) the hub itself, with fake connections and a fake clock ----------------------------


class FakeConn:
    def __init__(self, label: str) -> None:
        self.label = label

    def send(self, text: str) -> None:  # pragma: no cover - the hub never sends
        raise AssertionError("the hub returns frames; it never sends them itself")

    def close(self, code: int, reason: str) -> None:  # pragma: no cover
        raise AssertionError("the hub returns closes; it never closes by itself")

    def take_unsent(self) -> list[str]:
        return []  # everything "sent" to a fake connection was written

    def __repr__(self) -> str:
        return f"<conn {self.label}>"


UNIT_ROLES = ("A", "B", "C", "D", "U", "G", "R")
# A attacker; B, C, D identified and connected; U connected, never identified;
# G identified, socket gone (grace period: relays to it are queued); R left for good.


@dataclass
class Snapshot:
    a_name: str | None
    a_listed: bool
    a_space: str | None
    pending: list[str]


class HubWorld:
    def __init__(self, limits: HubLimits, attacker_identified: bool, rich: bool = False) -> None:
        """`rich`: B and D speak group calls and data links (docs/protocol.md §8, §9)."""
        self.now = 1000.0
        self.hub = Hub(limits, "test-version", {"iceServers": []}, lambda: self.now)
        self.conns: dict[str, FakeConn] = {}
        self.peers: dict[str, Peer] = {}
        for role in UNIT_ROLES:
            conn = FakeConn(role)
            peer, out, resumed = self.hub.connect(conn)
            assert not resumed and [c for c, _ in out.sends] == [peer.id]
            self.conns[role], self.peers[role] = conn, peer
        self.ids = {role: peer.id for role, peer in self.peers.items()}
        self.tokens = {role: peer.token for role, peer in self.peers.items()}
        self.names: dict[str, str] = {}
        for role in ("R", "B", "C", "D", "G", *(["A"] if attacker_identified else [])):
            self.names[role] = f"name of {role}"
            data: dict[str, Any] = {"name": self.names[role]}
            if rich and role in ("B", "D"):
                data["caps"] = ["group", "data"]
            out = self.hub.receive(self.peers[role], json.dumps({"type": "identify", "data": data}))
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
        return Snapshot(a.name, a.listed_on_socket, a.space, list(self.peers["G"].pending))

    def decode_sends(self, out: Outbox) -> list[tuple[str, Any]]:
        sends = []
        for peer_id, text in out.sends:
            role = self.role_of_id.get(peer_id)
            assert role is not None and self.hub.connection(peer_id) is self.conns[role], (
                f"frame to a peer the hub never had: {peer_id}"
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
        if is_leave(payload):  # the attacker would be gone; GroupWorld below sends `leave`
            return False
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
            conn, close_code, _ = out.closes[0]
            assert conn is self.conns["A"] and close_code == CLOSE_POLICY, out.closes
            note("attacker closed for rate abuse")
            return True
        # peer-away / undelivered answer a relay to G: checked with the relay below.
        delivery = ("peer-away", "undelivered")
        errors = [
            m
            for role, m in sends
            if role == "A" and m.get("type") == "error" and m["data"]["code"] not in delivery
        ]
        if errors:
            assert len(sends) == 1, f"an error plus other frames: {sends}"
            code = check_error(errors[0], payload)
            note(f"error {code}")
            assert code != "rate-limited" or throttled_ok
            assert a.name == snap.a_name and list(g.pending) == snap.pending
            if code == "not-identified":
                assert snap.a_name is None
            if code == "unknown-peer" and a.space is None:  # B, C, D, G are in the open network
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
        if message["type"] == "ping":
            assert sends == [("A", {"type": "pong", "data": {"t": data.get("t")}})], sends
            return False
        note(f"relayed {message['type']}")
        assert snap.a_name is not None, "an unidentified peer relayed"
        role = self.role_of_id.get(str(data.get("target")))
        assert role in ("B", "C", "D", "G"), f"relayed to {role}: {sends}"
        expected = stamped(message["type"], data, a.id)
        if role == "G":
            codes = [m["data"]["code"] for _, m in sends]
            assert all(role == "A" for role, _ in sends) and len(sends) <= 1, sends
            if codes == ["undelivered"]:  # G's backlog is full: dropped, and A is told
                note("relay to a peer in its grace period refused")
                assert list(g.pending) == snap.pending
                return False
            note("relay queued for a peer in its grace period")
            assert codes == ([] if message["type"] == "icecandidate" else ["peer-away"]), sends
            assert sends == [] or sends[0][1]["data"]["target"] == g.id
            assert len(g.pending) == len(snap.pending) + 1 <= PENDING_LIMIT
            assert strict_loads(g.pending[-1]) == expected
            self.for_g.append(expected)
        else:
            assert sends == [(role, expected)], f"expected exactly {expected} to {role}, got {sends}"
        return False

    def check_identify(self, sends: list[tuple[str, Any]], snap: Snapshot, data: dict[str, Any]) -> None:
        """B, C, D and G are in the open network; the attacker may name a space (§11)."""
        a = self.attacker
        name = a.name
        assert name is not None
        well_formed_name(name, data.get("name"))
        moved = snap.a_name is not None and a.space != snap.a_space
        if moved:
            note("identify: moved to another space")
        elif a.space is not None:
            note("identify: in a space")

        def about(role: str, remove: bool = False) -> dict[str, Any]:
            mine = snap.a_name if remove else name  # the old space hears the old name go
            who = {"id": self.ids[role], "name": mine if role == "A" else self.names[role], "kind": "browser"}
            return {"type": "peer", "data": {**who, "remove": True} if remove else who}

        others = ("B", "C", "D", "G")
        want_a: list[dict[str, Any]] = []
        want_others: list[dict[str, Any]] = []
        if moved and snap.a_space is None:  # it leaves the open network: each side hears the other go
            want_a += [about(r, remove=True) for r in others]
            want_others.append(about("A", remove=True))
        if (moved or not snap.a_listed) and a.space is None:  # it learns who is here, each exactly once
            want_a += [about(r) for r in others]
        if a.space is None and (moved or name != snap.a_name):
            want_others.append(about("A"))

        def key(message: Any) -> str:
            return json.dumps(message, sort_keys=True)

        to_attacker = [m for role, m in sends if role == "A"]
        assert sorted(map(key, to_attacker)) == sorted(map(key, want_a)), (to_attacker, want_a)
        for role in ("B", "C", "D"):
            got = [m for r, m in sends if r == role]
            assert got == want_others, f"{role} got {got}, expected {want_others}"
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
        """G resumes and gets exactly the relays that were held for it, in order."""
        conn = FakeConn("G again")
        peer, out, resumed = self.hub.connect(conn, self.tokens["G"])
        assert resumed and peer is self.peers["G"]
        assert all(self.hub.connection(c) is conn for c, _ in out.sends)
        frames = [strict_loads(text) for _, text in out.sends]
        assert frames[0]["type"] == "ready" and frames[0]["id"] == self.ids["G"]
        assert frames[1:] == self.for_g


FUZZ_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ_SETTINGS
@given(
    identified=st.sampled_from([True, True, True, False]),
    rich=st.booleans(),
    attack=st.lists(frames(UNIT_ROLES), min_size=1, max_size=12),
)
def test_hub_attacker_input_never_raises_misroutes_or_disturbs(
    identified: bool, rich: bool, attack: list[Frame]
) -> None:
    """Against peers that speak the original protocol, or (`rich`) group calls and data
    links, whose relays the hub then lets through."""
    world = HubWorld(GENEROUS, attacker_identified=identified, rich=rich)
    for frame in attack:
        world.attack(frame)
        world.honest_round()
    world.finish()


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


# --- (b) every client type between peers that really call each other ----------------------

DOC = PROJECT_ROOT / "docs" / "protocol.md"


def documented_client_types() -> dict[str, set[str]]:
    """The message types of docs/protocol.md's tables that a client sends: every table whose
    first column is `type`, after a heading or lead line that says "client → server" (§2's
    "Client → server" and "Relay messages (client → server → client)", §8's "Messages")."""
    tables: dict[str, set[str]] = {}
    heading = context = ""
    rows: set[str] | None = None
    for line in DOC.read_text().splitlines():
        if rows is not None and line.startswith("|"):
            if name := re.match(r"\|\s*`([^`]+)`", line):
                rows.add(name.group(1))
            continue
        rows = None
        if line.startswith("#"):
            heading = context = line
        elif re.match(r"\|\s*type\s*\|", line) and "client → server" in context.lower():
            rows = tables.setdefault(heading, set())
        else:
            context += "\n" + line
    return tables


def test_the_servers_client_types_are_the_documented_ones() -> None:
    """protocol.CLIENT_TYPES (what `parse` dispatches on, and what fuzzing generates) names
    exactly the client messages of docs/protocol.md, and its relay and call tables match
    the doc's sections."""
    tables = documented_client_types()
    assert len(tables) == 3, f"expected §2's two client tables and §8's, found {sorted(tables)}"
    documented = set().union(*tables.values())
    assert documented == CLIENT_TYPES == protocol.CLIENT_TYPES
    relay = next(types for heading, types in tables.items() if "Relay messages" in heading)
    group = next(types for heading, types in tables.items() if "Group calls" in heading)
    assert relay == set(RELAY_TYPES) == protocol.RELAY_TYPES
    assert group == protocol.CALL_TYPES
    assert "ready" not in documented and "call" not in documented  # server → client only
    for kind in sorted(CLIENT_TYPES):  # and the parser knows each (bad-message, not unknown-type)
        with pytest.raises(protocol.ProtocolError) as refused:
            protocol.parse(json.dumps({"type": kind, "data": None}))
        assert refused.value.code == protocol.BAD_MESSAGE


GROUP_ROLES = ("A", "B", "C", "D", "E")  # E may be an older app: no group calls, maybe no data links
GROUP_CAPS = [protocol.GROUP, protocol.DATA]
ROOM_SIZES = (3, 4, 6)  # max_call_size; 6 is the default
SPACE_CHOICES = (None, SPACE_POOL[0], SPACE_POOL[2])


@dataclass(frozen=True)
class Send:
    """`role` sends `frame`. A role of "@member" is whoever is in a call (the `pick`-th),
    "@invitee" whoever holds an invitation, "@outsider" and "@mate" whoever the last
    `Ref("outsider")` or `Ref("mate")` named (`GroupWorld.cast`)."""

    role: str
    frame: Frame
    pick: int = 0


@dataclass(frozen=True)
class Drop:
    """The role's socket goes away (a network drop): its grace period starts."""

    role: str
    pick: int = 0


@dataclass(frozen=True)
class Wait:
    """Time passes (rings and invitations time out, grace periods end)."""

    seconds: float


@dataclass(frozen=True)
class Move:
    """Removing someone (docs/protocol.md §11): `mover` sends `space-move` with `code` to
    every other person of its space but the `pick`-th, naming that one `removed`; then
    each of them identifies with the new code."""

    mover: str
    code: str
    pick: int


Step = Send | Drop | Wait | Move


@dataclass
class Coverage:
    """What a whole run reached, checked after it (see the test below)."""

    generated: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    largest_call: int = 0
    frames: int = 0
    failed: bool = False


@dataclass
class Role:
    name: str
    caps: list[str]
    space: str | None
    conn: FakeConn | None = None
    peer: Peer | None = None
    token: str = ""
    status: str = "new"  # live | away (grace period) | left (sent `leave`)
    told: dict[str, list[str]] = field(default_factory=dict)  # the call it was told it is in
    invites: list[tuple[str, str]] = field(default_factory=list)  # (call, inviter) it got, newest last

    @property
    def id(self) -> str:
        assert self.peer is not None
        return self.peer.id


@dataclass(frozen=True)
class State:
    spaces: dict[str, str | None]  # peer id -> space, every peer the hub lists
    rooms: dict[str, tuple[list[str], list[str]]]  # call id -> (members, invitees)


class Words(Mapping[str, Any]):
    """What a role's symbolic references mean when it sends: peer ids (and `gone`, a peer
    that left; `partner`, another member of its call; `outsider`, someone not in it;
    `inviter`, who sent its newest invitation), and the `Slot`s call:mine:k (k-th newest
    call it was told it is in), call:invited:k (invitations it got), call:seen:k (any call
    id anyone was told), call:ended, and its own name, caps, space."""

    def __init__(self, world: GroupWorld, role: str) -> None:
        self.world, self.role = world, role

    def __getitem__(self, key: str) -> Any:
        world, me = self.world, self.world.roles[self.role]
        if key in world.roles:
            return world.roles[key].id
        if key == "gone":
            return world.dead[-1] if world.dead else "00000000-0000-4000-8000-000000000000"
        if key == "inviter":  # who sent its newest invitation
            return (
                me.invites[-1][1]
                if me.invites
                else world.roles[GROUP_ROLES[world.pick % len(GROUP_ROLES)]].id
            )
        if key in ("partner", "outsider", "mate"):  # in its call; not in it; in its space
            room = world.room_of(self.role)
            others = [lbl for lbl in GROUP_ROLES if lbl != self.role]
            ids = {
                "partner": [lbl for lbl in others if lbl in room],
                "outsider": [lbl for lbl in others if lbl not in room],
                "mate": [lbl for lbl in others if world.roles[lbl].space == me.space],
            }[key] or others
            chosen = ids[world.pick % len(ids)]
            world.chosen[key] = chosen
            return world.roles[chosen].id
        if key in ("name", "caps", "space"):
            return getattr(me, key)
        _, scope, pick = [*key.split(":"), "0"][:3]
        seen = world.seen[::-1]
        ids = {
            "mine": [*reversed(me.told), *seen],
            "invited": [*(call for call, _ in reversed(me.invites)), *reversed(me.told), *seen],
            "seen": seen,
            "ended": world.ended[::-1],
        }[scope]
        return ids[int(pick) % len(ids)] if ids else "no-such-call"

    def __iter__(self) -> Iterator[str]:
        return iter(self.world.roles)

    def __len__(self) -> int:
        return len(self.world.roles)


class GroupWorld:
    """Five peers, each sending every client type (well-formed or a near miss), with
    macros that make 1:1 calls and groups happen; the oracles run after every step."""

    def __init__(
        self, limits: HubLimits, spaces: list[str | None], e_caps: list[str], seen: Coverage
    ) -> None:
        self.now = 1000.0
        self.limits = limits
        self.hub = Hub(limits, "test-version", {"iceServers": []}, lambda: self.now)
        self.coverage = seen
        self.roles = {
            role: Role(f"name of {role}", e_caps if role == "E" else GROUP_CAPS, space)
            for role, space in zip(GROUP_ROLES, spaces, strict=True)
        }
        self.seen: list[str] = []  # call ids anyone was told of
        self.ended: list[str] = []
        self.dead: list[str] = []  # ids of peers that left or were removed
        self.largest = 0
        self.pick = 0  # the current step's choice among candidates (`Send.pick`)
        self.chosen: dict[str, str] = {}  # who the last Ref("outsider") and Ref("mate") named
        for role in GROUP_ROLES:
            self.come_back(role)

    # --- driving ------------------------------------------------------------------------

    def run(self, steps: list[Step]) -> None:
        for step in steps:
            if isinstance(step, Wait):
                self.now += step.seconds
                before = self.state()
                out = self.hub.expire()
                self.check(None, None, out, before)
                self.after_removals()
            elif isinstance(step, Move):
                self.move(step)
            elif isinstance(step, Drop):
                role = self.roles[self.cast(step.role, step.pick)]
                if role.status == "live":
                    assert role.peer is not None and role.conn is not None
                    assert not self.hub.disconnect(role.peer, role.conn)  # quiet: the grace period
                    role.conn, role.status = None, "away"
                    note("a member's socket dropped" if role.peer.call else "a socket dropped")
            else:
                self.now += 0.01
                label = self.cast(step.role, step.pick)
                if self.roles[label].status != "live":
                    self.come_back(label)
                self.pick = step.pick
                self.send(label, step.frame)
            self.check_invariants()
        if self.largest:
            note(f"largest call: {self.largest}")
        self.coverage.largest_call = max(self.coverage.largest_call, self.largest)

    def move(self, step: Move) -> None:
        space = self.roles[step.mover].space
        mates = [lbl for lbl, r in self.roles.items() if lbl != step.mover and r.space == space]
        if not mates:
            return
        removed = mates[step.pick % len(mates)]
        staying = [lbl for lbl in mates if lbl != removed]
        again = {"name": Slot("name"), "caps": Slot("caps"), "space": step.code}
        for label in [step.mover, *staying]:
            self.now += 0.01
            if self.roles[label].status != "live":
                self.come_back(label)
        for label in staying:
            message = {
                "type": "space-move",
                "data": {"target": Ref(label), "code": step.code, "removed": Ref(removed)},
            }
            self.send(step.mover, JsonFrame(message))
        for label in [step.mover, *staying]:
            self.send(label, JsonFrame({"type": "identify", "data": again}))
        note(f"a space of {len(mates) + 1} removed someone")

    def cast(self, label: str, pick: int) -> str:
        """Who plays "@member", "@invitee", "@outsider" or "@mate" (see `Send`)."""
        if label in ("@outsider", "@mate"):
            return self.chosen.get(label[1:]) or GROUP_ROLES[pick % len(GROUP_ROLES)]
        if label == "@invitee":  # someone with an invitation
            invited = [lbl for lbl, r in self.roles.items() if r.invites]
            return invited[pick % len(invited)] if invited else GROUP_ROLES[pick % len(GROUP_ROLES)]
        if label == "@member":
            members = [lbl for lbl, r in self.roles.items() if r.peer is not None and r.peer.call is not None]
            return members[pick % len(members)] if members else GROUP_ROLES[pick % len(GROUP_ROLES)]
        return label

    def room_of(self, label: str) -> list[str]:
        """The labels of the members of `label`'s call (empty: in none)."""
        peer = self.roles[label].peer
        room = self.hub.room(peer.call) if peer is not None and peer.call is not None else None
        return [self.label_of(m) for m in room.members] if room is not None else []

    def come_back(self, label: str) -> None:
        """Connect (resuming or rejoining with the role's token), then identify as a page
        does after every (re)connect: its name, capabilities and space."""
        role = self.roles[label]
        old = role.peer
        role.conn = FakeConn(label)
        before = self.state()
        peer, out, resumed = self.hub.connect(role.conn, role.token or None)
        assert not resumed or role.status == "away", role.status
        if resumed:
            note("resumed within the grace period")
            assert peer is old
        elif old is not None and peer.id == old.id:
            note("rejoined after leave")
        if old is not None and peer.id != old.id:
            self.dead.append(old.id)
        if not resumed:
            role.told.clear()
            role.invites.clear()
        role.peer, role.status = peer, "live"
        texts = [text for peer_id, text in out.sends]
        assert [peer_id for peer_id, _ in out.sends] == [peer.id] * len(texts) and not out.closes, out
        ready = strict_loads(texts[0])
        assert ready["type"] == "ready" and ready["id"] == peer.id, ready
        role.token = ready["token"]
        for text in texts[1:]:  # held while it was away, then the call it is in
            frame = strict_loads(text)
            assert frame["type"] in (*RELAY_TYPES, "invite", "call", "peer"), frame
            if frame["type"] == "invite":
                assert frame["data"]["target"] == peer.id, frame
            self.absorb(label, frame)
            note("held frames delivered on resume")
        self.check_spaces(before, self.state(), out, skip=peer.id)  # held frames may be old news
        gone = [call_id for call_id in role.told if self.hub.room(call_id) is None]
        # A call that ended while its socket was gone is told on the resume (held for it).
        assert not (resumed and gone), (label, "resumed and not told that its call ended", gone)
        identify = {"id": peer.id, "name": role.name, "caps": role.caps, "space": role.space}
        self.send(label, JsonFrame({"type": "identify", "data": identify}), counted=False)

    def send(self, label: str, frame: Frame, counted: bool = True) -> None:
        role = self.roles[label]
        assert role.peer is not None and role.conn is not None
        payload = frame.render(Words(self, label))
        try:
            message = strict_loads(payload) if isinstance(payload, str) else None
        except (ValueError, RecursionError):
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        before = self.state()
        out = (
            self.hub.receive(role.peer, payload)
            if isinstance(payload, str)
            else self.hub.receive_binary(role.peer)
        )
        self.coverage.frames += 1
        outcome = self.check(label, message, out, before, payload)
        if counted and kind in CLIENT_TYPES:
            self.coverage.generated[kind] += 1
            self.coverage.outcomes[f"{kind}: {outcome}"] += 1
            note(f"{kind}: {outcome}")
            if outcome == "ok":
                self.coverage.accepted[kind] += 1
        if out.closes:
            role.status, role.conn = "left", None
            self.dead.append(role.id)
        self.after_removals()

    def after_removals(self) -> None:
        for role in self.roles.values():
            if (
                role.peer is not None
                and self.hub.peer(role.peer.id) is not role.peer
                and role.status == "away"
            ):
                role.status = "left"  # its grace period ended: the next page load is someone new
                note("removed when its grace period ended")

    # --- oracles ------------------------------------------------------------------------

    def state(self) -> State:
        spaces = {}
        for role in self.roles.values():
            if (
                role.peer is not None
                and self.hub.peer(role.peer.id) is role.peer
                and role.peer.name is not None
            ):
                spaces[role.peer.id] = role.peer.space
        rooms = {room.id: (list(room.members), list(room.invited)) for room in self.hub.calls}
        return State(spaces, rooms)

    def label_of(self, peer_id: str) -> str:
        label = next(
            (lbl for lbl, r in self.roles.items() if r.peer is not None and r.peer.id == peer_id), None
        )
        assert label is not None, f"a frame to a peer the test never had: {peer_id}"
        return label

    def check(
        self, actor: str | None, message: Any, out: Outbox, before: State, payload: str | bytes = ""
    ) -> str:
        """One step's frames. Returns its outcome: "ok" or the code it was refused with."""
        hub, after = self.hub, self.state()
        me = self.roles[actor] if actor else None
        if out.closes:
            assert me is not None and is_leave(payload), f"a close without `leave`: {out.closes}"
            assert [(c, code) for c, code, _ in out.closes] == [(me.conn, CLOSE_NORMAL)], out.closes
            assert hub.peer(me.id) is None
        sends: list[tuple[str, dict[str, Any]]] = []
        for peer_id, text in out.sends:
            label = self.label_of(peer_id)
            role = self.roles[label]
            if role.status == "away" and hub.connection(peer_id) is None:
                # A member in its grace period is still a member: `call` frames are addressed
                # to it and dropped (outbox.deliver); it gets the current call on resume.
                assert strict_loads(text)["type"] == "call", (
                    f"a frame to {label}, in its grace period: {text}"
                )
                note("`call` to a member in its grace period (dropped)")
                continue
            assert hub.connection(peer_id) is role.conn is not None, (
                f"a frame to {label}, who has no socket: {text}"
            )
            frame = strict_loads(text)
            assert isinstance(frame, dict) and isinstance(frame.get("data"), dict), text
            if label != actor:
                assert role.peer is not None and role.peer.name is not None, f"{label} is not listed: {text}"
            sends.append((label, frame))
        errors = [(label, m) for label, m in sends if m["type"] == "error"]
        assert all(label == actor for label, _ in errors), f"an error to someone else: {errors}"
        assert len(errors) <= 1, errors
        codes = [check_error(m, payload) for _, m in errors]
        if codes and codes[0] not in ("peer-away", "undelivered"):
            assert sends == errors, f"refused ({codes[0]}), yet: {sends}"
            self.absorb_all(sends, before, after)
            return codes[0]
        kind = message.get("type") if isinstance(message, dict) else None
        data = message.get("data") if isinstance(message, dict) else None
        relays = [(label, m) for label, m in sends if m["type"] in RELAY_TYPES]
        if me is not None and kind in RELAY_TYPES:
            assert isinstance(data, dict)
            target = self.label_of(data["target"])
            expected = stamped(kind, data, me.id)
            if self.roles[target].status == "live":
                assert relays == [(target, expected)], (
                    f"expected exactly {expected} to {target}, got {relays}"
                )
            else:
                assert relays == [] and codes in ([], ["peer-away"], ["undelivered"]), sends
                note(f"{kind} held for a peer in its grace period")
        else:
            assert relays == [], f"relayed without a relay: {relays}"
        for label, m in sends:
            self.check_frame(actor, kind, data, label, m, before, after)
        last = {(label, m["data"]["id"]): m["data"] for label, m in sends if m["type"] == "call"}
        for (label, call_id), got in last.items():  # what a member was told last is the truth
            now = after.rooms.get(call_id, ([], []))[0]
            if got.get("ended"):
                assert self.roles[label].id not in now, (label, got, now)
            else:
                assert got["members"] == now, f"{label} was told {got}, the hub has {now}"
        self.check_spaces(before, after, out)
        self.absorb_all(sends, before, after)
        return "ok"

    def check_frame(
        self,
        actor: str | None,
        kind: Any,
        data: Any,
        label: str,
        m: dict[str, Any],
        before: State,
        after: State,
    ) -> None:
        role, got = self.roles[label], m["data"]
        assert role.peer is not None
        if m["type"] == "pong":
            assert label == actor and kind == "ping" and got == {"t": data.get("t")}, m
        elif m["type"] == "invite":
            # Only the invitee hears of an invitation, from a member of that call, about that call.
            assert actor is not None and kind == "invite", m
            assert (
                got["target"] == role.peer.id == data["target"] and got["source"] == self.roles[actor].id
            ), m
            assert got["call"] == data["call"] and got["members"] == after.rooms[got["call"]][0], (m, after)
            assert got["source"] in got["members"] and role.peer.id not in got["members"], m
            note("invitation delivered")
        elif m["type"] == "call":
            assert protocol.GROUP in role.peer.caps, f"`call` to {label}, which has no group calls: {m}"
            call_id = got["id"]
            if got.get("ended"):
                assert got == {"id": call_id, "members": [], "ended": True}, m
                assert call_id not in after.rooms or role.peer.id not in after.rooms[call_id][0], m
                was = before.rooms.get(call_id, ([], []))
                assert role.peer.id in was[0] + was[1], (
                    f"{label} hears of the end of a call it was not in: {m}"
                )
            else:  # (the last one each member gets in a step is checked against the hub in `check`)
                members = got["members"]
                assert set(got) == {"id", "members"}, m
                assert role.peer.id in members, f"{label} is told of a call it is not in: {m}"
                assert 2 <= len(members) == len(set(members)) <= self.limits.max_call_size, m
                for member in members:  # everyone in it exists and is listed (before or after)
                    assert member in before.spaces or member in after.spaces, (m, member)
        elif m["type"] == "peer":
            assert got["kind"] == "browser" and got["id"] != role.peer.id, m
            if "inCall" in got:
                assert protocol.GROUP in role.peer.caps, f"inCall to an app without group calls: {m}"
        else:
            assert m["type"] in (*RELAY_TYPES, "error"), m

    def check_spaces(self, before: State, after: State, out: Outbox, skip: str | None = None) -> None:
        """Nobody hears of a peer of another space: every peer a frame names (its sender,
        the peer announced, a call's members) shared the receiver's space before or after
        this step (a move is heard on both sides). `removed` in a `space-move` is the
        sender's own words, not the server's."""
        missing = object()
        for peer_id, text in out.sends:
            if peer_id == skip:
                continue
            frame = json.loads(text)
            got = frame["data"]
            named = [got.get("source"), got.get("id") if frame["type"] in ("peer", "icecandidate") else None]
            named += got.get("members", []) if frame["type"] in ("call", "invite") else []
            mine = {before.spaces.get(peer_id, missing), after.spaces.get(peer_id, missing)} - {missing}
            for other in named:
                if other is None or other == peer_id:
                    continue
                theirs = {before.spaces.get(other, missing), after.spaces.get(other, missing)} - {missing}
                assert theirs, f"{frame} names a peer the hub never had"
                assert mine & theirs, (
                    f"{self.label_of(peer_id)} in {mine} hears of a peer in {theirs}: {frame}"
                )

    def check_invariants(self) -> None:
        """The hub's own state: calls of 2..max_call_size members (invitations counted),
        each member listed, in one space with the others, in no other call; and what the
        members were told is what the hub holds."""
        limit = self.limits.max_call_size
        member_of: Counter[str] = Counter()
        for room in self.hub.calls:
            members, invited = list(room.members), list(room.invited)
            assert 2 <= len(members) <= limit, f"call {room.id} has {len(members)} members"
            assert len(members) + len(invited) <= limit, (members, invited)
            assert not set(members) & set(invited), (members, invited)
            peers = [self.hub.peer(m) for m in members + invited]
            assert all(p is not None and p.name is not None for p in peers), (members, invited)
            assert len({p.space for p in peers if p is not None}) == 1, f"a call across spaces: {room.id}"
            for member in members:
                member_of[member] += 1
                peer = self.hub.peer(member)
                assert peer is not None and peer.call == room.id, (member, room.id)
            self.largest = max(self.largest, len(members))
        assert all(n == 1 for n in member_of.values()), f"a peer in several calls: {member_of}"
        for label, role in self.roles.items():
            if role.status != "live" or protocol.GROUP not in role.caps:
                continue
            assert role.peer is not None
            truth = {room.id: list(room.members) for room in self.hub.calls if role.peer.id in room.members}
            assert role.told == truth, f"{label} believes it is in {role.told}, the hub says {truth}"

    def absorb_all(self, sends: list[tuple[str, dict[str, Any]]], before: State, after: State) -> None:
        for label, m in sends:
            self.absorb(label, m)
        for role in self.roles.values():
            if role.peer is None or role.status != "live":
                continue
            old = before.spaces.get(role.peer.id, "absent")
            new = after.spaces.get(role.peer.id, "absent")
            if old != new and "absent" not in (old, new):
                role.told.clear()  # a page that changes space has left its call
                role.space = new
                note("moved to another space")

    def absorb(self, label: str, m: dict[str, Any]) -> None:
        """What a page learns from a frame: the call it is in (the newest `call` that lists
        it), the invitations it got."""
        role, got = self.roles[label], m["data"]
        if m["type"] == "call":
            if got.get("ended"):
                role.told.pop(got["id"], None)
                self.ended.append(got["id"])
            else:
                role.told = {got["id"]: got["members"]}
                if got["id"] not in self.seen:
                    self.seen.append(got["id"])
        elif m["type"] == "invite":
            role.invites.append((got["call"], got["source"]))


def group_words() -> Vocabulary:
    calls = [f"call:{scope}:{k}" for scope in ("mine", "invited", "seen") for k in (0, 1)] + ["call:ended"]
    return Vocabulary(
        targets=st.sampled_from([*(Ref(role) for role in GROUP_ROLES), Ref("mate"), Ref("gone")]),
        calls=st.sampled_from([Slot(key) for key in calls]) | st.just("c0ffee"),
        names=st.just(Slot("name")) | st.sampled_from(["Ann", "ann", "Bob"]),
        caps=st.just(Slot("caps")),  # a page's capabilities do not change while it runs
        spaces=st.sampled_from([Slot("space"), Slot("space"), None, *SPACE_POOL[:2], SPACE_POOL[2].lower()]),
    )


def _pair() -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(GROUP_ROLES), min_size=2, max_size=2, unique=True)


def _send(role: str, kind: str, pick: int = 0, **data: Any) -> Send:
    return Send(role, JsonFrame({"type": kind, "data": data}), pick)


def dial(pair: list[str], rings: bool, end: str) -> list[Step]:
    """x calls y: offer, maybe ringing, then y accepts or declines, or x cancels."""
    x, y = pair
    steps: list[Step] = [_send(x, "offer", type="offer", sdp="v=0", target=Ref(y))]
    if rings:
        steps.append(_send(y, "ringing", target=Ref(x)))
    if end == "accept":
        steps.append(_send(y, "accept", type="answer", sdp="v=0", target=Ref(x)))
    elif end == "reject":
        steps.append(_send(y, "reject", target=Ref(x), reason="declined"))
    else:
        steps.append(_send(x, "hangup", target=Ref(y), reason="cancelled"))
    return steps


def add(inviter: str, pick: int, rings: bool, end: str) -> list[Step]:
    """A member (`inviter`, or "@member": whoever is in a call) invites someone not in its
    call, with the call id the hub told it; the invitee joins with the id of its
    invitation, or declines, or the inviter withdraws it."""
    mine, invited = Slot("call:mine:0"), Slot("call:invited:0")
    steps: list[Step] = [_send(inviter, "invite", pick, target=Ref("outsider"), call=mine)]
    if rings:
        steps.append(_send("@outsider", "ringing", target=Ref("inviter"), call=invited))
    if end == "accept":
        steps.append(_send("@outsider", "join", call=invited))
    elif end == "reject":
        steps.append(_send("@outsider", "reject", target=Ref("inviter"), call=invited, reason="busy"))
    elif end == "cancel":
        steps.append(_send(inviter, "hangup", pick, target=Ref("outsider"), call=mine, reason="cancelled"))
    return steps  # "later": it rings on while other things happen (see `answer`)


def answer(pick: int, end: str) -> list[Step]:
    """Someone with an invitation joins the newest one, or declines it, or goes to another
    space (`None`: the open network) meanwhile."""
    invited = Slot("call:invited:0")
    if end == "hop":
        space = [None, *SPACE_POOL][pick % (len(SPACE_POOL) + 1)]
        return [_send("@invitee", "identify", pick, name=Slot("name"), caps=Slot("caps"), space=space)]
    if end == "reject":
        return [_send("@invitee", "reject", pick, target=Ref("inviter"), call=invited, reason="declined")]
    return [_send("@invitee", "join", pick, call=invited)]


def in_call_words() -> Vocabulary:
    """A member's words: another member of its call, its call's id."""
    words = group_words()
    return Vocabulary(
        targets=st.just(Ref("partner")),
        calls=st.just(Slot("call:mine:0")),
        names=words.names,
        caps=words.caps,
        spaces=words.spaces,
    )


IN_CALL_TYPES = frozenset({*RELAY_TYPES, "leave-call"}) - {"space-move"}


def group_steps(min_units: int, max_units: int) -> st.SearchStrategy[list[Step]]:
    roles = st.sampled_from(GROUP_ROLES)
    picks = st.integers(0, 5)
    ends = st.sampled_from(["accept", "accept", "accept", "reject", "cancel"])
    single = st.builds(lambda r, m: [Send(r, JsonFrame(m))], roles, client_messages(group_words()))
    in_call = st.builds(
        lambda p, m: [Send("@member", JsonFrame(m), p)],
        picks,
        client_messages(in_call_words(), IN_CALL_TYPES),
    )
    dials = st.builds(dial, _pair(), st.booleans(), ends)
    adds = st.builds(
        add,
        st.sampled_from(["@member", "@member", *GROUP_ROLES]),
        picks,
        st.booleans(),
        ends | st.just("later"),
    )
    answers = st.builds(answer, picks, ends | st.just("hop"))
    drops = st.builds(lambda r, p: [Drop(r, p)], st.sampled_from(["@member", *GROUP_ROLES]), picks)
    waits = st.builds(lambda s: [Wait(s)], st.sampled_from([1.0, 1.0, 12.0, 25.0, 45.0]))
    moves = st.builds(lambda *args: [Move(*args)], roles, st.sampled_from(SPACE_POOL), picks)
    # Weighted by repetition (one_of would keep one of each): mostly messages, calls and
    # invitations; now and then a drop, time passing or a removal, which tend to end calls.
    weighted = [single] * 5 + [in_call] * 3 + [dials] * 4 + [adds] * 5 + [answers] * 2 + [drops, waits, moves]
    unit = st.sampled_from(weighted).flatmap(lambda strategy: strategy)
    # Half the examples start from a group of three (A calls B, A adds C), so what happens
    # inside groups is exercised as much as how they form.
    group = [*dial(["A", "B"], False, "accept"), *add("A", 0, False, "accept")]
    return st.builds(
        lambda start, units: [*(group if start else []), *(s for u in units for s in u)],
        st.booleans(),
        st.lists(unit, min_size=min_units, max_size=max_units),
    )


def group_spaces() -> st.SearchStrategy[list[str | None]]:
    """Mostly everyone in one space (the open network or a code), sometimes not."""
    same = "same"
    others = st.lists(st.sampled_from([same] * 12 + list(SPACE_CHOICES)), min_size=4, max_size=4)
    return st.builds(
        lambda base, rest: [base, *(base if space == same else space for space in rest)],
        st.sampled_from(SPACE_CHOICES),
        others,
    )


RICH_FRAMES = 10_000  # at least this many frames over the group, data-link and call paths (issue 18, 34)
GROUP_EXAMPLES = 800


@pytest.fixture
def group_coverage() -> Iterator[Coverage]:
    """What every example of the test below reached, added up (so the fixture is shared
    across examples on purpose), then checked once they have all run: a run whose coverage
    collapsed fails (an error at teardown) even though no oracle did."""
    seen = Coverage()
    yield seen
    if seen.failed:
        return  # an oracle failed: that is the news
    print(f"\ngroup fuzz: {seen.frames} frames, largest call {seen.largest_call}, {dict(seen.outcomes)}")
    assert set(seen.generated) == CLIENT_TYPES, f"never generated: {CLIENT_TYPES - set(seen.generated)}"
    assert set(seen.accepted) == CLIENT_TYPES, f"never accepted: {CLIENT_TYPES - set(seen.accepted)}"
    assert seen.largest_call >= 3, "no group of three ever formed: the membership paths went unfuzzed"
    assert seen.frames >= RICH_FRAMES, seen.frames


@settings(
    FUZZ_SETTINGS,
    max_examples=GROUP_EXAMPLES,
    suppress_health_check=[*FUZZ_SETTINGS.suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(
    size=st.sampled_from(ROOM_SIZES),
    spaces=group_spaces(),
    e_caps=st.sampled_from([GROUP_CAPS, GROUP_CAPS, [protocol.DATA], []]),
    steps=group_steps(16, 28),
)
def test_every_message_type_of_the_protocol_is_fuzzed(
    group_coverage: Coverage, size: int, spaces: list[str | None], e_caps: list[str], steps: list[Step]
) -> None:
    """Five peers send every client type of docs/protocol.md (protocol.CLIENT_TYPES), well-
    formed and near misses, with 1:1 calls and invitations woven in so groups form; drops,
    resumes, leaves, removals from a space and time passing. After every step: the oracles of
    (a), and for calls: at most max_call_size members, a peer in at most one call, `call`
    frames list existing members and reach only them, an `invite` reaches only its target,
    nobody hears of a peer of another space, and what members were told is what the hub
    holds. After the run (`group_coverage`): every client type was generated and accepted
    somewhere, and a group of 3 formed. `--hypothesis-show-statistics` lists the events."""
    limits = HubLimits(rate_limit=1e9, rate_burst=10**9, max_call_size=size)
    try:
        GroupWorld(limits, spaces, e_caps, group_coverage).run(steps)
    except Exception:
        group_coverage.failed = True
        raise


def test_a_call_that_ended_while_a_member_was_away_is_reported_on_resume() -> None:
    """Ann's network drops in a call with Bob; Bob leaves the call, which ends it. Ann comes
    back within her grace period: she must learn that the call is over (docs/protocol.md
    §8: "the last member gets ... ended"; §1: a resume loses nothing), as she would
    have had her socket stayed up. Today she gets `ready` and nothing else, and her page
    goes on believing it is in a call the server no longer has."""
    hub = Hub(HubLimits(), "v", {}, lambda: 1000.0)
    people = []
    for name in ("Ann", "Bob"):
        conn = FakeConn(name)
        peer, out, _ = hub.connect(conn)
        token = json.loads(out.sends[0][1])["token"]
        hub.receive(peer, json.dumps({"type": "identify", "data": {"name": name, "caps": ["group"]}}))
        people.append((peer, conn, token))
    (ann, ann_conn, ann_token), (bob, _, _) = people
    hub.receive(ann, json.dumps({"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": bob.id}}))
    hub.receive(
        bob, json.dumps({"type": "accept", "data": {"type": "answer", "sdp": "v=0", "target": ann.id}})
    )
    call_id = ann.call
    assert call_id is not None
    assert not hub.disconnect(ann, ann_conn)  # her grace period starts
    hub.receive(bob, json.dumps({"type": "leave-call", "data": {"call": call_id}}))
    assert hub.room(call_id) is None
    _, out, resumed = hub.connect(FakeConn("Ann again"), ann_token)
    frames = [json.loads(text) for _, text in out.sends]
    assert resumed and frames[0]["type"] == "ready"
    assert {"type": "call", "data": {"id": call_id, "members": [], "ended": True}} in frames[1:]


@pytest.mark.parametrize("depth", [1, 100, 252, 253, 254, 300, 1024, 1025, 5000])
@pytest.mark.parametrize("where", ["data", "candidate", "message", "top"])
def test_deeply_nested_frames_never_raise(depth: int, where: str) -> None:
    """Regression oracle for nesting: refused with an error or relayed intact, never a crash.
    (orjson parses 1024 levels but serializes only ~254.)"""
    world = HubWorld(GENEROUS, attacker_identified=True)
    world.attack(DeepFrame(depth, "[", where, Ref("B")))
    world.honest_round()
    world.finish()
