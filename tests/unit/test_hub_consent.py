"""A call needs the callee's consent (issue 18, findings 22-24 and 29): an `accept` makes a
call only when it answers a live offer from its target, an invitation lives as long as
it rings and its inviter can withdraw it, and a bot serves each caller on its own."""

from __future__ import annotations

import json
from typing import Any

from server.hub import Hub, Peer
from server.rooms import RING_SLACK
from tests.support.hubtools import FakeConn, apply, make_hub, send
from tests.unit.test_hub_calls import drain, member, of_type, start_call

RING = 30.0


def offer(hub: Hub, caller: Peer, callee: Peer) -> None:
    send(hub, caller, {"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": callee.id}})


def accept(hub: Hub, callee: Peer, caller: Peer) -> None:
    send(hub, callee, {"type": "accept", "data": {"type": "answer", "sdp": "v=0", "target": caller.id}})


def errors(conn: FakeConn) -> list[dict[str, Any]]:
    return of_type(conn, "error")


def test_an_accept_nobody_offered_is_refused_and_reaches_nobody() -> None:
    hub, _ = make_hub(ring_timeout=RING)
    mallory, m = member(hub, "Mallory")
    victim, v = member(hub, "Victim")
    _, w = member(hub, "Watcher")
    drain(m, v, w)
    accept(hub, mallory, victim)  # "I accept the call you never made"
    got = m.take()
    assert [f["type"] for f in got] == ["error"]
    assert got[0]["data"]["code"] == "not-invited" and got[0]["data"]["ref"] == "accept"
    assert got[0]["data"]["target"] == victim.id
    assert v.take() == [] and w.take() == []  # no answer, no `call`, no "in a call"
    assert mallory.call is None and victim.call is None and hub.calls == []
    # From the other side too, and again: never a call.
    accept(hub, victim, mallory)
    assert mallory.call is None and hub.calls == []


def test_an_accept_in_a_space_needs_an_offer_too() -> None:
    hub, _ = make_hub(ring_timeout=RING)
    mallory, m = member(hub, "Mallory")
    victim, v = member(hub, "Victim")
    for peer in (mallory, victim):
        send(hub, peer, {"type": "identify", "data": {"name": peer.name, "caps": ["group"], "space": "K7QP"}})
    drain(m, v)
    accept(hub, mallory, victim)
    assert errors(m)[0]["code"] == "not-invited" and v.take() == [] and hub.calls == []


def test_the_answer_to_a_live_offer_makes_the_call_once() -> None:
    hub, _ = make_hub(ring_timeout=RING)
    ann, a = member(hub, "Ann")
    bob, b = member(hub, "Bob")
    drain(a, b)
    offer(hub, ann, bob)
    assert [f["type"] for f in b.take()] == ["offer"]
    accept(hub, bob, ann)
    assert ann.call is not None and ann.call == bob.call
    assert [f["type"] for f in a.take()][:2] == ["accept", "call"]
    # A renegotiation inside the call needs no new ring; its answer is relayed as before.
    offer(hub, bob, ann)
    accept(hub, ann, bob)
    assert [f["type"] for f in b.take() if f["type"] != "peer"][-1:] == ["accept"]
    assert len(hub.calls) == 1


def test_an_offer_rings_only_so_long_and_a_hangup_or_decline_ends_it() -> None:
    hub, clock = make_hub(ring_timeout=RING)
    ann, a = member(hub, "Ann")
    bob, b = member(hub, "Bob")
    drain(a, b)
    offer(hub, ann, bob)
    clock.advance(RING + RING_SLACK + 0.1)
    accept(hub, bob, ann)
    assert errors(b)[0]["code"] == "not-invited" and hub.calls == []
    assert [f for f in a.take() if f["type"] == "accept"] == []
    # Within the ring it works; the caller's hang-up withdraws it.
    offer(hub, ann, bob)
    clock.advance(RING)
    send(hub, ann, {"type": "hangup", "data": {"target": bob.id, "reason": "cancelled"}})
    accept(hub, bob, ann)
    assert errors(b)[-1]["code"] == "not-invited" and hub.calls == []
    # The callee's decline uses it up too.
    offer(hub, ann, bob)
    send(hub, bob, {"type": "reject", "data": {"target": ann.id, "reason": "declined"}})
    accept(hub, bob, ann)
    assert errors(b)[-1]["code"] == "not-invited" and hub.calls == []
    # An offer cannot be answered by someone it was not made to.
    cat, c = member(hub, "Cat")
    offer(hub, ann, bob)
    accept(hub, cat, ann)
    assert errors(c)[-1]["code"] == "not-invited" and hub.calls == []


def test_ringing_offers_are_bounded_and_swept() -> None:
    hub, clock = make_hub(ring_timeout=RING)
    ann, _ = member(hub, "Ann")
    others = [member(hub, f"P{i}")[0] for i in range(40)]
    for other in others:
        offer(hub, ann, other)
    assert len(hub.rooms.ringing) == 16  # the newest few ring; the oldest were dropped
    clock.advance(RING + RING_SLACK + 1)
    apply(hub.expire(), hub)
    assert len(hub.rooms.ringing) == 0


def test_accepting_a_new_call_ends_a_stale_membership() -> None:
    """A lost hang-up left Ann counted in a call with Bob; she accepts Cat's call: the
    server follows her into the call she is really in (issue 18, finding 23)."""
    hub, _ = make_hub(ring_timeout=RING)
    ann, a = member(hub, "Ann")
    bob, b = member(hub, "Bob")
    cat, c = member(hub, "Cat")
    old = start_call(hub, ann, bob)
    drain(a, b, c)
    offer(hub, cat, ann)
    accept(hub, ann, cat)
    assert ann.call is not None and ann.call != old and ann.call == cat.call
    assert hub.room(old) is None and bob.call is None
    assert {"id": old, "members": [], "ended": True} in of_type(b, "call")


def test_an_invitation_lives_as_long_as_it_rings() -> None:
    hub, clock = make_hub(ring_timeout=RING, max_call_size=3)
    ann, a = member(hub, "Ann")
    bob, b = member(hub, "Bob")
    cat, c = member(hub, "Cat")
    dan, d = member(hub, "Dan")
    call_id = start_call(hub, ann, bob)
    send(hub, ann, {"type": "invite", "data": {"target": cat.id, "call": call_id}})
    drain(a, b, c, d)
    # While it rings the place is taken...
    send(hub, bob, {"type": "invite", "data": {"target": dan.id, "call": call_id}})
    assert errors(b)[0]["code"] == "call-full"
    clock.advance(RING + RING_SLACK + 1)  # ...42 s later it rings no more:
    send(hub, cat, {"type": "join", "data": {"call": call_id}})
    assert errors(c)[0]["code"] == "not-invited" and cat.call is None
    assert hub.room(call_id) is not None and cat.id not in hub.room(call_id).members  # type: ignore[union-attr]
    send(hub, bob, {"type": "invite", "data": {"target": dan.id, "call": call_id}})  # the place is free
    assert errors(b) == [] and [f["type"] for f in d.take()] == ["invite"]


def test_the_inviter_withdraws_an_invitation() -> None:
    hub, _ = make_hub(ring_timeout=RING)
    ann, a = member(hub, "Ann")
    bob, b = member(hub, "Bob")
    cat, c = member(hub, "Cat")
    call_id = start_call(hub, ann, bob)
    send(hub, ann, {"type": "invite", "data": {"target": cat.id, "call": call_id}})
    drain(a, b, c)
    send(hub, ann, {"type": "hangup", "data": {"target": cat.id, "call": call_id, "reason": "cancelled"}})
    assert errors(a) == []
    assert of_type(c, "hangup") == [
        {"reason": "cancelled", "call": call_id, "source": ann.id, "target": cat.id}
    ]
    send(hub, cat, {"type": "join", "data": {"call": call_id}})
    assert errors(c)[0]["code"] == "not-invited" and cat.call is None
    # Only the inviter can withdraw it, and only while it is an invitation.
    send(hub, ann, {"type": "invite", "data": {"target": cat.id, "call": call_id}})
    drain(c)
    send(hub, bob, {"type": "hangup", "data": {"target": cat.id, "call": call_id}})
    assert errors(b)[0]["code"] == "not-in-call" and c.take() == []
    send(hub, cat, {"type": "join", "data": {"call": call_id}})
    assert cat.call == call_id


def bot(hub: Hub, name: str) -> tuple[Peer, FakeConn]:
    conn = FakeConn(name)
    peer, out, _ = hub.connect(conn, kind="bot")
    apply(out, hub)
    data = {"id": peer.id, "name": name, "caps": ["group"]}
    apply(hub.receive(peer, json.dumps({"type": "identify", "data": data})), hub)
    conn.take()
    return peer, conn


def call_bot(hub: Hub, caller: Peer, echo: Peer) -> str:
    offer(hub, caller, echo)
    accept(hub, echo, caller)
    assert caller.call is not None
    return caller.call


def test_a_bot_serves_each_caller_on_its_own() -> None:
    """A call with the echo never makes it "in a call" for anyone else (finding 29)."""
    hub, _ = make_hub(ring_timeout=RING)
    echo, e = bot(hub, "Echo test")
    ann, a = member(hub, "Ann")
    bob, b = member(hub, "Bob")
    cat, c = member(hub, "Cat")
    dan, d = member(hub, "Dan")
    first = call_bot(hub, ann, echo)
    second = call_bot(hub, bob, echo)
    assert first != second and echo.call is None
    assert echo.id in hub.room(first).members and echo.id in hub.room(second).members  # type: ignore[union-attr]
    assert all(not f.get("inCall") for f in of_type(c, "peer") if f["id"] == echo.id)
    # Invited to a third call, it can join it too.
    third = start_call(hub, cat, dan)
    send(hub, cat, {"type": "invite", "data": {"target": echo.id, "call": third}})
    send(hub, echo, {"type": "join", "data": {"call": third}})
    assert errors(e) == [] and echo.id in hub.room(third).members  # type: ignore[union-attr]
    assert hub.room(first) is not None and hub.room(second) is not None
    # Hanging up one call of two ends that call only.
    send(hub, ann, {"type": "hangup", "data": {"target": echo.id}})
    assert hub.room(first) is None and hub.room(second) is not None and ann.call is None
    # The bot leaving (the server stopping) takes it out of every call.
    drain(a, b, c, d)
    apply(hub.disconnect(echo, e), hub)
    apply(hub.remove(echo), hub)
    assert hub.room(second) is None and bob.call is None
    assert echo.id not in hub.room(third).members  # type: ignore[union-attr]
