"""Group-call membership in the hub (docs/protocol.md §8): calls made from 1:1 accepts,
invitations, joins, leaving, members vanishing, and the refusals (not invited, not a
member, full, unsupported) that must leak nothing."""

from __future__ import annotations

import json
from typing import Any

from server.hub import Hub, Peer
from server.state import export_state, import_state
from tests.support.hubtools import FakeConn, apply, make_hub, send

GROUP = ["group"]


def member(hub: Hub, label: str, caps: list[str] | None = GROUP) -> tuple[Peer, FakeConn]:
    conn = FakeConn(label)
    peer, out, _ = hub.connect(conn)
    apply(out, hub)
    data: dict[str, Any] = {"name": label}
    if caps is not None:
        data["caps"] = caps
    apply(hub.receive(peer, json.dumps({"type": "identify", "data": data})), hub)
    return peer, conn


def drain(*conns: FakeConn) -> None:
    for conn in conns:
        conn.take()


def of_type(conn: FakeConn, kind: str) -> list[dict[str, Any]]:
    return [m["data"] for m in conn.take() if m["type"] == kind]


def start_call(hub: Hub, caller: Peer, callee: Peer) -> str:
    send(hub, caller, {"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": callee.id}})
    send(hub, callee, {"type": "accept", "data": {"type": "answer", "sdp": "v=0", "target": caller.id}})
    assert caller.call is not None and caller.call == callee.call
    return caller.call


def three_in_a_call(hub: Hub) -> tuple[str, list[tuple[Peer, FakeConn]]]:
    """Ann calls Bob, Ann adds Cat: a call of three; every inbox emptied."""
    people = [member(hub, name) for name in ("Ann", "Bob", "Cat")]
    (ann, _), (bob, _), (cat, _) = people
    call_id = start_call(hub, ann, bob)
    send(hub, ann, {"type": "invite", "data": {"target": cat.id, "call": call_id}})
    send(hub, cat, {"type": "join", "data": {"call": call_id}})
    drain(*(conn for _, conn in people))
    return call_id, people


def test_an_accepted_call_becomes_a_call_with_two_members() -> None:
    hub, _ = make_hub()
    ann, a = member(hub, "Ann")
    bob, b = member(hub, "Bob")
    watcher, w = member(hub, "Watcher")
    old, o = member(hub, "Old client", caps=None)
    drain(a, b, w, o)
    call_id = start_call(hub, ann, bob)
    assert of_type(a, "call") == [{"id": call_id, "members": [ann.id, bob.id]}]
    assert of_type(b, "call") == [{"id": call_id, "members": [ann.id, bob.id]}]
    in_call = {m["id"] for m in of_type(w, "peer") if m.get("inCall")}
    assert in_call == {ann.id, bob.id}
    assert o.take() == []  # an original-protocol client sees no new frames
    # A newcomer that speaks group calls learns who is in a call; an old one does not.
    _, late = member(hub, "Late")
    assert {m["id"] for m in of_type(late, "peer") if m.get("inCall")} == {ann.id, bob.id}
    _, late_old = member(hub, "Late old", caps=None)
    assert all("inCall" not in m for m in of_type(late_old, "peer"))
    assert watcher.call is None and old.call is None


def test_invite_join_and_relays_between_members_only() -> None:
    hub, _ = make_hub()
    ann, a = member(hub, "Ann")
    bob, b = member(hub, "Bob")
    cat, c = member(hub, "Cat")
    dan, d = member(hub, "Dan")
    call_id = start_call(hub, ann, bob)
    drain(a, b, c, d)
    send(hub, bob, {"type": "invite", "data": {"target": cat.id, "call": call_id}})
    (invite,) = of_type(c, "invite")
    assert invite == {"source": bob.id, "target": cat.id, "call": call_id, "members": [ann.id, bob.id]}
    send(hub, cat, {"type": "join", "data": {"call": call_id}})
    everyone = [ann.id, bob.id, cat.id]
    for conn in (a, b, c):
        assert of_type(conn, "call") == [{"id": call_id, "members": everyone}]
    # The joiner offers to each member, scoped to the call: delivered.
    send(
        hub,
        cat,
        {"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": ann.id, "call": call_id}},
    )
    assert of_type(a, "offer") == [
        {"type": "offer", "sdp": "v=0", "call": call_id, "source": cat.id, "target": ann.id}
    ]
    # A relay scoped to the call, to or from a non-member, is refused and goes nowhere.
    drain(a, b, c, d)
    send(
        hub,
        cat,
        {"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": dan.id, "call": call_id}},
    )
    send(
        hub,
        dan,
        {"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": cat.id, "call": call_id}},
    )
    assert [e["code"] for e in of_type(c, "error")] == ["not-in-call"]
    assert [e["code"] for e in of_type(d, "error")] == ["not-in-call"]
    assert a.take() == [] and b.take() == []


def test_refusals_not_invited_not_a_member_unsupported_full() -> None:
    hub, _ = make_hub(max_call_size=3)
    ann, a = member(hub, "Ann")
    bob, _ = member(hub, "Bob")
    cat, c = member(hub, "Cat")
    dan, d = member(hub, "Dan")
    old, _ = member(hub, "Old", caps=None)
    call_id = start_call(hub, ann, bob)
    drain(a, c, d)
    send(hub, cat, {"type": "join", "data": {"call": call_id}})
    assert [e["code"] for e in of_type(c, "error")] == ["not-invited"]
    send(hub, cat, {"type": "invite", "data": {"target": dan.id, "call": call_id}})
    assert [e["code"] for e in of_type(c, "error")] == ["not-in-call"]
    send(hub, ann, {"type": "invite", "data": {"target": old.id, "call": call_id}})
    assert [e["code"] for e in of_type(a, "error")] == ["unsupported"]
    send(hub, ann, {"type": "invite", "data": {"target": cat.id, "call": call_id}})
    send(hub, ann, {"type": "invite", "data": {"target": dan.id, "call": call_id}})
    (full,) = of_type(a, "error")
    assert full["code"] == "call-full" and full["message"] == "This call is full"
    assert of_type(d, "invite") == []
    send(hub, cat, {"type": "join", "data": {"call": call_id}})
    assert len(hub.room(call_id).members) == 3  # type: ignore[union-attr]
    send(hub, ann, {"type": "join", "data": {"call": "no-such-call"}})
    assert [e["code"] for e in of_type(a, "error")] == ["not-invited"]


def test_declining_an_invitation_clears_it() -> None:
    hub, _ = make_hub()
    ann, a = member(hub, "Ann")
    bob, _ = member(hub, "Bob")
    cat, c = member(hub, "Cat")
    call_id = start_call(hub, ann, bob)
    send(hub, ann, {"type": "invite", "data": {"target": cat.id, "call": call_id}})
    drain(a, c)
    send(hub, cat, {"type": "reject", "data": {"target": ann.id, "reason": "declined", "call": call_id}})
    assert of_type(a, "reject") == [
        {"reason": "declined", "call": call_id, "source": cat.id, "target": ann.id}
    ]
    send(hub, cat, {"type": "join", "data": {"call": call_id}})
    assert [e["code"] for e in of_type(c, "error")] == ["not-invited"]


def test_leaving_the_others_carry_on_until_one_is_left() -> None:
    hub, _ = make_hub()
    call_id, [(ann, a), (bob, b), (cat, c)] = three_in_a_call(hub)
    send(hub, ann, {"type": "leave-call", "data": {"call": call_id}})
    assert of_type(a, "call") == [{"id": call_id, "members": [], "ended": True}]
    assert of_type(b, "call") == [{"id": call_id, "members": [bob.id, cat.id]}]
    assert ann.call is None and bob.call == call_id
    send(hub, bob, {"type": "leave-call", "data": {"call": call_id}})
    assert of_type(c, "call") == [
        {"id": call_id, "members": [bob.id, cat.id]},
        {"id": call_id, "members": [], "ended": True},
    ]
    assert of_type(b, "call") == [{"id": call_id, "members": [], "ended": True}]
    assert hub.room(call_id) is None and cat.call is None and hub.calls == []
    send(hub, bob, {"type": "leave-call", "data": {"call": call_id}})
    assert [e["code"] for e in of_type(b, "error")] == ["not-in-call"]


def test_a_member_that_vanishes_leaves_the_call_but_a_dropped_one_stays() -> None:
    hub, clock = make_hub(resume_grace=20)
    call_id, [(ann, a), (bob, _), (cat, c)] = three_in_a_call(hub)
    apply(hub.disconnect(cat, c), hub)  # a network drop: still a member
    assert cat.call == call_id and of_type(a, "call") == []
    clock.advance(21)
    apply(hub.expire(), hub)  # the grace period is over: gone from the call too
    assert of_type(a, "call") == [{"id": call_id, "members": [ann.id, bob.id]}]
    send(hub, bob, {"type": "leave", "data": {}})  # leaving the network leaves the call
    assert of_type(a, "call") == [{"id": call_id, "members": [], "ended": True}]
    assert hub.calls == []


def test_hanging_up_a_two_person_call_ends_it() -> None:
    hub, _ = make_hub()
    ann, a = member(hub, "Ann")
    bob, b = member(hub, "Bob")
    _, w = member(hub, "Watcher")
    call_id = start_call(hub, ann, bob)
    drain(a, b, w)
    send(hub, bob, {"type": "hangup", "data": {"target": ann.id}})
    assert of_type(a, "hangup") == [{"source": bob.id, "target": ann.id}]
    assert of_type(b, "call") == [{"id": call_id, "members": [], "ended": True}]
    assert [m.get("inCall", False) for m in of_type(w, "peer")] == [False, False]
    assert ann.call is None and bob.call is None


def test_a_call_scoped_hangup_in_a_call_of_two_ends_it_but_not_in_a_group() -> None:
    hub, _ = make_hub()
    call_id, [(ann, a), (bob, b), (cat, c)] = three_in_a_call(hub)
    send(hub, ann, {"type": "hangup", "data": {"target": bob.id, "call": call_id}})
    assert hub.room(call_id) is not None and ann.call == call_id  # a pair's hang-up in a group
    send(hub, cat, {"type": "leave-call", "data": {"call": call_id}})
    drain(a, b, c)
    send(hub, ann, {"type": "hangup", "data": {"target": bob.id, "call": call_id}})
    assert hub.room(call_id) is None and ann.call is None and bob.call is None
    assert of_type(b, "call") == [{"id": call_id, "members": [], "ended": True}]


def test_joining_another_call_leaves_the_first() -> None:
    hub, _ = make_hub()
    ann, _ = member(hub, "Ann")
    bob, _ = member(hub, "Bob")
    cat, c = member(hub, "Cat")
    dan, d = member(hub, "Dan")
    first = start_call(hub, ann, bob)
    second = start_call(hub, cat, dan)
    send(hub, ann, {"type": "invite", "data": {"target": cat.id, "call": first}})
    drain(c, d)
    send(hub, cat, {"type": "join", "data": {"call": first}})
    assert of_type(d, "call") == [{"id": second, "members": [], "ended": True}]
    assert cat.call == first and dan.call is None
    calls = of_type(c, "call")  # her old call ended, then the new one's members
    assert calls == [
        {"id": second, "members": [], "ended": True},
        {"id": first, "members": [ann.id, bob.id, cat.id]},
    ]


def test_a_data_link_is_never_a_call_and_needs_the_data_capability() -> None:
    hub, _ = make_hub()
    ann, a = member(hub, "Ann", caps=["group", "data"])
    bob, b = member(hub, "Bob", caps=["group", "data"])
    old, _ = member(hub, "Old", caps=None)
    drain(a, b)
    offer = {"type": "offer", "sdp": "v=0", "link": "data"}
    send(hub, ann, {"type": "offer", "data": {**offer, "target": bob.id}})
    assert of_type(b, "offer") == [{**offer, "source": ann.id, "target": bob.id}]
    send(
        hub,
        bob,
        {"type": "accept", "data": {"type": "answer", "sdp": "v=0", "link": "data", "target": ann.id}},
    )
    assert [m["link"] for m in of_type(a, "accept")] == ["data"]
    assert ann.call is None and bob.call is None and hub.calls == []  # no call, nobody "in a call"
    send(hub, ann, {"type": "offer", "data": {**offer, "target": old.id}})
    assert [e["code"] for e in of_type(a, "error")] == ["unsupported"]
    send(hub, ann, {"type": "offer", "data": {**offer, "link": "media", "target": bob.id}})
    assert [e["code"] for e in of_type(a, "error")] == ["bad-message"]


def test_a_restart_keeps_who_is_in_which_call() -> None:
    hub, _ = make_hub(resume_grace=20)
    call_id, [(ann, _), (bob, _), (cat, _)] = three_in_a_call(hub)
    state = json.loads(json.dumps(export_state(hub, wall_now=5000.0)))  # through the file's JSON
    fresh, _ = make_hub(resume_grace=20)
    assert import_state(fresh, state, wall_now=5001.0) == 3
    room = fresh.room(call_id)
    assert room is not None and room.ids == [ann.id, bob.id, cat.id]
    # The tab resumes, and hears its call again (with everyone in it) right after `ready`.
    conn = FakeConn("bob again")
    again, out, resumed = fresh.connect(conn, bob.token)
    apply(out, fresh)
    frames = conn.take()
    assert resumed and again.call == call_id
    assert frames[-1] == {"type": "call", "data": {"id": call_id, "members": [ann.id, bob.id, cat.id]}}


def test_restored_calls_are_checked() -> None:
    hub, _ = make_hub(resume_grace=20, max_call_size=3)
    peers = [member(hub, n)[0] for n in ("Ann", "Bob", "Cat", "Dan")]
    state = export_state(hub, wall_now=5000.0)
    state["calls"] = [
        {"id": "c1", "members": [p.id for p in peers]},  # more than MAX_CALL_SIZE
        {"id": "c2", "members": [peers[0].id, "nobody"]},  # one real member
        {"id": 7, "members": []},
        "junk",
    ]
    fresh, _ = make_hub(resume_grace=20, max_call_size=3)
    assert import_state(fresh, state, wall_now=5001.0) == 4
    assert fresh.calls == [] and all(p.call is None for p in (fresh.peer(x.id) for x in peers) if p)


def test_invite_errors_name_their_target_and_an_old_client_member_blocks_a_group() -> None:
    hub, _ = make_hub()
    ann, a = member(hub, "Ann")
    old, _ = member(hub, "Old", caps=None)
    cat, c = member(hub, "Cat")
    call_id = start_call(hub, ann, old)  # a 1:1 call with an original-protocol client
    drain(a, c)
    send(hub, ann, {"type": "invite", "data": {"target": cat.id, "call": call_id}})
    (refused,) = of_type(a, "error")
    assert refused["code"] == "unsupported" and refused["target"] == cat.id and "Old" in refused["message"]
    assert of_type(c, "invite") == []


def test_an_invitee_may_tell_the_inviter_its_device_rings() -> None:
    hub, _ = make_hub()
    ann, a = member(hub, "Ann")
    bob, _ = member(hub, "Bob")
    cat, c = member(hub, "Cat")
    dan, _ = member(hub, "Dan")
    call_id = start_call(hub, ann, bob)
    send(hub, ann, {"type": "invite", "data": {"target": cat.id, "call": call_id}})
    drain(a, c)
    send(hub, cat, {"type": "ringing", "data": {"target": ann.id, "call": call_id}})
    assert of_type(a, "ringing") == [{"call": call_id, "source": cat.id, "target": ann.id}]
    send(hub, cat, {"type": "ringing", "data": {"target": bob.id, "call": call_id}})  # not its inviter
    send(hub, dan, {"type": "ringing", "data": {"target": ann.id, "call": call_id}})  # not invited
    assert [e["code"] for e in of_type(c, "error")] == ["not-in-call"]
