"""Presence shared between instances (server/replica.py and server/mirrors.py), with two
hubs joined by an in-memory bus instead of Redis: events and frames are queued and
delivered in order, as Redis pub/sub does."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque
from typing import Any

from server import replica
from server.config import PROJECT_ROOT
from server.hub import Hub, Peer, Room
from server.outbox import Outbox, deliver
from tests.support.hubtools import FakeClock, FakeConn, make_hub


class Net:
    """Instances by name, and what is in flight between them."""

    def __init__(self) -> None:
        self.hubs: dict[str, Hub] = {}
        # (to instance or None: all, a, b, whether a request for a call's owner)
        self.in_flight: deque[tuple[str | None, str, str, bool]] = deque()

    def add(self, name: str, hub: Hub) -> Hub:
        hub.presence = MemoryPresence(self, name)
        hub.instance = name
        self.hubs[name] = hub
        return hub

    def flush(self) -> None:
        while self.in_flight:
            self.step()

    def step(self) -> None:
        """Deliver the oldest event or frame in flight."""
        to, first, second, request = self.in_flight.popleft()
        if to is None:  # a presence event, for every other instance
            for name, hub in self.hubs.items():
                event = replica.parse(first, name)
                if event is not None:
                    deliver(replica.apply(hub, event, Bus(self, name)), hub)
        elif to in self.hubs:
            hub = self.hubs[to]
            mirrors = hub.mirrors
            deliver(mirrors.on_behalf(first, second) if request else mirrors.forwarded(first, second), hub)


class Bus:
    def __init__(self, net: Net, me: str) -> None:
        self.net, self.me = net, me

    def forward(self, home: str, peer_id: str, text: str) -> None:
        self.net.in_flight.append((home, peer_id, text, False))

    def others(self) -> list[str]:
        return [name for name in self.net.hubs if name != self.me]


class MemoryPresence:
    def __init__(self, net: Net, me: str) -> None:
        self.net, self.me = net, me

    def peer_up(self, peer: Peer) -> None:
        self.net.in_flight.append((None, replica.up_event(self.me, peer), "", False))

    def peer_gone(self, peer: Peer, left: bool) -> None:
        self.net.in_flight.append((None, replica.gone_event(self.me, peer, left), "", False))

    def room_changed(self, room: Room, ended: bool) -> None:
        self.net.in_flight.append((None, replica.room_event(self.me, room, ended), "", False))

    def request(self, owner: str, peer_id: str, text: str) -> None:
        self.net.in_flight.append((owner, peer_id, text, True))


def apply(out: Outbox, hub: Hub) -> None:
    deliver(out, hub)  # to FakeConns here, and through the bus to the mirrors' instances


def send(hub: Hub, peer: Peer, message: dict[str, Any]) -> None:
    apply(hub.receive(peer, json.dumps(message)), hub)


def two_instances(**limits: Any) -> tuple[Net, Hub, Hub, FakeClock]:
    net = Net()
    a, clock = make_hub(**limits)
    b = Hub(a.limits, "v1", a.client_config, clock)
    return net, net.add("A", a), net.add("B", b), clock


def join_on(
    net: Net, hub: Hub, label: str, name: str, caps: list[str] | None = None
) -> tuple[Peer, FakeConn]:
    conn = FakeConn(label)
    peer, out, _ = hub.connect(conn)
    apply(out, hub)
    data: dict[str, Any] = {"id": peer.id, "name": name}
    if caps is not None:
        data["caps"] = caps
    send(hub, peer, {"type": "identify", "data": data})
    net.flush()
    conn.take()
    return peer, conn


def relay(net: Net, hub: Hub, peer: Peer, message: dict[str, Any]) -> None:
    send(hub, peer, message)
    net.flush()


def test_a_peer_held_by_one_instance_is_listed_renamed_and_reached_on_the_other() -> None:
    net, a, b, _ = two_instances()
    bob, bob_conn = join_on(net, b, "bob", "Bob")
    alice, _ = join_on(net, a, "alice", "Alice")
    assert bob_conn.take() == [{"type": "peer", "data": {"id": alice.id, "name": "Alice", "kind": "browser"}}]
    mirror = b.peer(alice.id)
    assert mirror is not None and mirror.home == "A" and b.connections == 1  # no socket of its own

    relay(net, a, alice, {"type": "identify", "data": {"id": alice.id, "name": "Alice B."}})
    assert bob_conn.take()[0]["data"]["name"] == "Alice B."

    relay(net, b, bob, {"type": "offer", "data": {"type": "offer", "sdp": "s", "target": alice.id}})
    assert a.peer(alice.id) is not None
    alice_conn = a.connection(alice.id)
    assert isinstance(alice_conn, FakeConn)
    offer = alice_conn.take()[-1]
    assert offer["type"] == "offer" and offer["data"]["source"] == bob.id

    relay(net, a, alice, {"type": "leave", "data": {}})
    assert bob_conn.take() == [
        {"type": "peer", "data": {"id": alice.id, "name": "Alice B.", "kind": "browser", "remove": True}}
    ]
    assert b.peer(alice.id) is None


def test_a_relay_to_an_away_peer_is_held_at_its_home_and_the_sender_told() -> None:
    net, a, b, _ = two_instances()
    alice, alice_conn = join_on(net, a, "alice", "Alice")
    bob, bob_conn = join_on(net, b, "bob", "Bob")
    apply(a.disconnect(alice, alice_conn), a)  # her grace period starts, on her instance only
    relay(net, b, bob, {"type": "offer", "data": {"type": "offer", "sdp": "s", "target": alice.id}})
    notices = bob_conn.take()
    assert [m["data"]["code"] for m in notices] == ["peer-away"]
    assert len(alice.pending) == 1


def test_a_token_from_one_instance_resumes_on_the_other_and_nobody_sees_a_leave() -> None:
    net, a, b, _ = two_instances()
    alice, alice_conn = join_on(net, a, "alice", "Alice")
    bob, bob_conn = join_on(net, b, "bob", "Bob")
    apply(a.disconnect(alice, alice_conn), a)
    relay(net, b, bob, {"type": "offer", "data": {"type": "offer", "sdp": "held", "target": alice.id}})
    bob_conn.take()

    again = FakeConn("alice-again")
    peer, out, resumed = b.connect(again, alice.token)
    apply(out, b)
    net.flush()
    assert resumed and peer.id == alice.id and peer.home is None
    assert [m["type"] for m in again.take()] == ["ready", "offer"]  # what A held came along
    old = a.peer(alice.id)
    assert old is not None and old.home == "B" and not old.pending and a.connections == 0
    assert bob_conn.take() == []  # no leave, no join


def test_a_live_socket_on_the_old_instance_is_closed_as_replaced() -> None:
    net, a, b, _ = two_instances()
    alice, alice_conn = join_on(net, a, "alice", "Alice")
    _, out, _ = b.connect(FakeConn("alice-again"), alice.token)
    apply(out, b)
    net.flush()
    assert alice_conn.closed == (4001, "resumed elsewhere")
    assert a.connections == 0


def test_peers_of_a_lost_instance_get_their_grace_period_then_leave() -> None:
    net, a, b, clock = two_instances(resume_grace=5.0)
    alice, _ = join_on(net, a, "alice", "Alice")
    _, bob_conn = join_on(net, b, "bob", "Bob")
    assert b.mirrors.orphan("A") == 1
    clock.advance(4.0)
    apply(b.expire(), b)
    assert bob_conn.take() == []
    # Within it, her token (which the other instance keeps) resumes her here.
    clock.advance(2.0)
    apply(b.expire(), b)
    assert bob_conn.take()[0]["data"] == {"id": alice.id, "name": "Alice", "kind": "browser", "remove": True}


def test_call_membership_changes_on_one_instance_are_seen_on_the_other() -> None:
    net, a, b, _ = two_instances()
    group = ["group"]
    alice, alice_conn = join_on(net, a, "alice", "Alice", group)
    bob, bob_conn = join_on(net, b, "bob", "Bob", group)
    carol, carol_conn = join_on(net, a, "carol", "Carol", group)
    alice_conn.take()
    bob_conn.take()
    relay(net, a, alice, {"type": "offer", "data": {"type": "offer", "sdp": "o", "target": bob.id}})
    relay(net, b, bob, {"type": "accept", "data": {"type": "answer", "sdp": "a", "target": alice.id}})
    call = [m for m in alice_conn.take() if m["type"] == "call"]
    assert call and call[0]["data"]["members"] == [alice.id, bob.id]  # sent once, from Bob's instance
    room = a.room(call[0]["data"]["id"])
    assert room is not None and room.ids == [alice.id, bob.id]
    marks = [m["data"] for m in carol_conn.take() if m["type"] == "peer"]
    assert {(m["id"], m.get("inCall")) for m in marks} == {(alice.id, True), (bob.id, True)}

    bob_conn.take()
    relay(net, b, bob, {"type": "invite", "data": {"target": carol.id, "call": room.id}})
    assert carol_conn.take()[0]["type"] == "invite"
    relay(net, a, carol, {"type": "join", "data": {"call": room.id}})
    assert b.room(room.id).ids == [alice.id, bob.id, carol.id]  # type: ignore[union-attr]
    assert [m["data"]["members"] for m in bob_conn.take() if m["type"] == "call"] == [
        [alice.id, bob.id, carol.id]
    ]

    relay(net, b, bob, {"type": "leave-call", "data": {"call": room.id}})
    relay(net, a, carol, {"type": "leave-call", "data": {"call": room.id}})
    assert a.room(room.id) is None and b.room(room.id) is None
    assert all(p.call is None for hub in (a, b) for p in hub.listed())


def test_events_from_this_instance_and_malformed_ones_are_ignored() -> None:
    assert replica.parse('{"t":"up","home":"A"}', "A") is None
    assert replica.parse("not json", "A") is None
    assert replica.parse('{"t":"up"}', "A") is None
    assert replica.mirror_record({"id": "x", "name": "", "kind": "browser", "token_hash": "h"}) is None
    assert (
        replica.mirror_record({"id": "x", "name": "N", "kind": "browser", "token_hash": "h", "caps": 3})
        is None
    )
    assert replica.split_frame(b"peer\n{}") == ("peer", "{}", False)
    assert replica.split_frame(replica.request_message("peer", "{}")) == ("peer", "{}", True)
    assert replica.split_frame(b"no-newline") is None


def test_one_instance_never_imports_redis() -> None:
    code = "import sys, server.__main__, server.app; print('redis' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_a_peer_resumed_from_another_instance_has_its_own_message_budget() -> None:
    """Mirrors share one tiny bucket (they never send here); one resumed here sends a
    call's signalling at once (an ICE restart: offer and candidates), none of it dropped."""
    net, a, b, _ = two_instances()
    alice, alice_conn = join_on(net, a, "alice", "Alice")
    bob, bob_conn = join_on(net, b, "bob", "Bob")
    apply(a.disconnect(alice, alice_conn), a)
    again = FakeConn("alice-again")
    peer, out, resumed = b.connect(again, alice.token)
    apply(out, b)
    net.flush()
    assert resumed
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
    for _ in range(20):
        relay(net, b, peer, {"type": "icecandidate", "data": {"target": bob.id, "candidate": candidate}})
    assert [m["type"] for m in bob_conn.take()] == ["icecandidate"] * 20
    assert [m for m in again.take() if m["type"] == "error"] == []


def test_a_peer_resumed_after_its_instance_was_taken_for_dead_has_its_own_budget() -> None:
    """The same when the resume comes after the other instance was declared lost: the
    peer, orphaned here into its grace period, still had the mirrors' shared bucket, and
    a reconnecting phone's ICE restart was dropped ("rate-limited")."""
    net, a, b, _ = two_instances()
    alice, _ = join_on(net, a, "alice", "Alice")
    bob, bob_conn = join_on(net, b, "bob", "Bob")
    assert b.mirrors.orphan("A") == 1  # A was killed; B's heartbeat check noticed first
    again = FakeConn("alice-again")
    peer, out, resumed = b.connect(again, alice.token)
    apply(out, b)
    assert resumed and peer.id == alice.id
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
    for _ in range(20):
        relay(net, b, peer, {"type": "icecandidate", "data": {"target": bob.id, "candidate": candidate}})
    assert [m["type"] for m in bob_conn.take() if m["type"] != "peer"] == ["icecandidate"] * 20
    assert [m for m in again.take() if m["type"] == "error"] == []


def test_a_call_that_ended_elsewhere_while_a_member_was_away_is_told_on_its_resume() -> None:
    """Alice (on A) is in Bob's call (owned by B) when her network drops; Bob leaves, which
    ends the call. The `call` ended that B sends through the bus is held for her on A, and
    her resume there tells her (the fuzzer found it dropped: her page kept the call)."""
    net, a, b, _ = two_instances()
    group = ["group"]
    alice, alice_conn = join_on(net, a, "alice", "Alice", group)
    bob, bob_conn = join_on(net, b, "bob", "Bob", group)
    call_id = accepted_call(net, a, alice, b, bob, bob_conn)
    apply(a.disconnect(alice, alice_conn), a)
    relay(net, b, bob, {"type": "leave-call", "data": {"call": call_id}})
    assert b.room(call_id) is None and a.room(call_id) is None
    again = FakeConn("alice-again")
    peer, out, resumed = a.connect(again, alice.token)
    apply(out, a)
    assert resumed and peer.id == alice.id
    calls = [m["data"] for m in again.take() if m["type"] == "call"]
    assert calls == [{"id": call_id, "members": [], "ended": True}]


def test_an_accept_across_instances_needs_an_offer_from_its_target() -> None:
    """The callee's instance decides whether an `accept` makes a call: the caller's offer,
    relayed from the other instance, rings there (issue 18, finding 22)."""
    net, a, b, _ = two_instances()
    group = ["group"]
    mallory, mallory_conn = join_on(net, a, "mallory", "Mallory", group)
    victim, victim_conn = join_on(net, b, "victim", "Victim", group)
    mallory_conn.take()
    victim_conn.take()
    relay(net, a, mallory, {"type": "accept", "data": {"type": "answer", "sdp": "a", "target": victim.id}})
    assert [m["data"]["code"] for m in mallory_conn.take()] == ["not-invited"]
    assert victim_conn.take() == [] and a.calls == [] and b.calls == []
    relay(net, b, victim, {"type": "offer", "data": {"type": "offer", "sdp": "o", "target": mallory.id}})
    relay(net, a, mallory, {"type": "accept", "data": {"type": "answer", "sdp": "a", "target": victim.id}})
    assert [m["type"] for m in victim_conn.take() if m["type"] != "peer"] == ["accept", "call"]
    assert len(a.calls) == 1 and len(b.calls) == 1


def accepted_call(net: Net, a: Hub, alice: Peer, b: Hub, bob: Peer, bob_conn: FakeConn) -> str:
    """Alice (on `a`) calls Bob (on `b`), who accepts there: B owns the call. Its id."""
    relay(net, a, alice, {"type": "offer", "data": {"type": "offer", "sdp": "o", "target": bob.id}})
    relay(net, b, bob, {"type": "accept", "data": {"type": "answer", "sdp": "a", "target": alice.id}})
    return str(next(m for m in bob_conn.take() if m["type"] == "call")["data"]["id"])


def in_call(hub: Hub, call_id: str) -> tuple[list[str], list[str]]:
    room = hub.room(call_id)
    return (room.ids, sorted(room.invited)) if room is not None else ([], [])


def test_one_owner_decides_a_calls_membership_when_both_instances_invite_at_once() -> None:
    """Issue 18, finding 26: invites and joins on both instances at once left them
    disagreeing, with more people told they joined than MAX_CALL_SIZE. The instance that
    owns the call (where it was accepted) decides; the other forwards its peers' requests."""
    net, a, b, _ = two_instances(max_call_size=4)
    group = ["group"]
    alice, alice_conn = join_on(net, a, "alice", "Alice", group)
    bob, bob_conn = join_on(net, b, "bob", "Bob", group)
    carol, carol_conn = join_on(net, a, "carol", "Carol", group)
    dave, _ = join_on(net, a, "dave", "Dave", group)
    erin, erin_conn = join_on(net, b, "erin", "Erin", group)
    frank, frank_conn = join_on(net, b, "frank", "Frank", group)
    call_id = accepted_call(net, a, alice, b, bob, bob_conn)
    assert b.room(call_id).owner is None and a.room(call_id).owner == "B"  # type: ignore[union-attr]
    alice_conn.take()

    # Two free places; four invitations at once, two from each instance, before any
    # event crosses.
    for target in (carol, dave):
        send(a, alice, {"type": "invite", "data": {"target": target.id, "call": call_id}})
    for target in (erin, frank):
        send(b, bob, {"type": "invite", "data": {"target": target.id, "call": call_id}})
    net.flush()
    errors = [m["data"]["code"] for m in alice_conn.take() if m["type"] == "error"]
    assert errors == ["call-full", "call-full"]  # decided at B, told to Alice on A
    assert not [m for m in carol_conn.take() if m["type"] == "invite"]
    assert [m["type"] for m in erin_conn.take() if m["type"] == "invite"] == ["invite"]
    assert in_call(a, call_id) == in_call(b, call_id) == ([alice.id, bob.id], sorted([erin.id, frank.id]))

    # Joins from both instances: only the invited get in, and never past the limit.
    send(a, carol, {"type": "join", "data": {"call": call_id}})
    send(b, erin, {"type": "join", "data": {"call": call_id}})
    send(b, frank, {"type": "join", "data": {"call": call_id}})
    net.flush()
    assert [m["data"]["code"] for m in carol_conn.take() if m["type"] == "error"] == ["not-invited"]
    assert in_call(a, call_id) == in_call(b, call_id) == ([alice.id, bob.id, erin.id, frank.id], [])
    told = [m["data"]["members"] for m in frank_conn.take() if m["type"] == "call"]
    assert told[-1] == [alice.id, bob.id, erin.id, frank.id]
    assert all(len(members) <= 4 for members in told)


def test_leaving_on_the_other_instance_reaches_the_owner_and_everyone_agrees() -> None:
    net, a, b, _ = two_instances()
    group = ["group"]
    alice, alice_conn = join_on(net, a, "alice", "Alice", group)
    bob, bob_conn = join_on(net, b, "bob", "Bob", group)
    carol, _ = join_on(net, a, "carol", "Carol", group)
    call_id = accepted_call(net, a, alice, b, bob, bob_conn)
    relay(net, a, alice, {"type": "invite", "data": {"target": carol.id, "call": call_id}})
    relay(net, a, carol, {"type": "join", "data": {"call": call_id}})
    assert in_call(a, call_id)[0] == in_call(b, call_id)[0] == [alice.id, bob.id, carol.id]
    alice_conn.take()
    # Carol's page closes on A (not the owner): B hears it and publishes the call.
    relay(net, a, carol, {"type": "leave", "data": {}})
    assert in_call(a, call_id) == in_call(b, call_id) == ([alice.id, bob.id], [])
    assert [m["data"]["members"] for m in alice_conn.take() if m["type"] == "call"] == [[alice.id, bob.id]]
    # Alice leaves on A: decided at B, where a call of one ends, on both instances.
    relay(net, a, alice, {"type": "leave-call", "data": {"call": call_id}})
    assert a.room(call_id) is None and b.room(call_id) is None
    assert all(p.call is None for hub in (a, b) for p in hub.listed())


def test_the_calls_of_a_lost_owner_go_to_the_same_instance_everywhere() -> None:
    net = Net()
    hubs = []
    for name in ("A", "B", "C"):
        hub, _ = make_hub()
        hubs.append(net.add(name, hub))
    a, b, c = hubs
    group = ["group"]
    alice, _ = join_on(net, a, "alice", "Alice", group)
    bob, bob_conn = join_on(net, b, "bob", "Bob", group)
    call_id = accepted_call(net, a, alice, b, bob, bob_conn)
    assert a.room(call_id).owner == c.room(call_id).owner == "B"  # type: ignore[union-attr]
    del net.hubs["B"]  # killed
    a.mirrors.orphan("B", ["C"])
    c.mirrors.orphan("B", ["A"])
    assert a.room(call_id).owner is None  # type: ignore[union-attr]  # A decides now ...
    assert c.room(call_id).owner == "A"  # type: ignore[union-attr]  # ... and C agrees


def test_messages_between_instances_are_signed_and_anything_else_is_refused() -> None:
    key = b"k" * 32
    signed = replica.sign(key, "lancall:to:A", "peer\n{}")
    assert replica.verified(key, "lancall:to:A", signed) == "peer\n{}"
    assert replica.verified(key, "lancall:to:A", signed.encode()) == "peer\n{}"
    assert replica.verified(b"x" * 32, "lancall:to:A", signed) is None  # another key
    assert replica.verified(key, "lancall:to:B", signed) is None  # replayed to another channel
    assert replica.verified(key, "lancall:to:A", signed[:-1] + "]") is None  # changed on the way
    assert replica.verified(key, "lancall:to:A", "peer\n{}") is None  # never signed
    assert replica.verified(key, "lancall:to:A", "x" * 22 + " peer") is None


def test_a_space_code_is_a_keyed_tag_among_instances() -> None:
    key, other = b"k" * 32, b"o" * 32
    assert replica.space_tag(key, "GARDEN42") == replica.space_tag(key, "GARDEN42")
    assert replica.space_tag(key, "GARDEN42") != replica.space_tag(key, "GARDEN43")
    assert replica.space_tag(key, "GARDEN42") != replica.space_tag(other, "GARDEN42")
    assert "GARDEN" not in replica.space_tag(key, "GARDEN42").upper()
    # Mirror records carry tags; a code-shaped or odd value is refused like any bad input.
    record = {"id": "x", "name": "N", "kind": "browser", "token_hash": "h"}
    assert replica.mirror_record({**record, "space": replica.space_tag(key, "GARDEN42")}) is not None
    assert replica.mirror_record({**record, "space": "../../etc"}) is None
    assert replica.mirror_record({**record, "space": "a" * 65}) is None
