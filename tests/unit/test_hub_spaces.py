"""Spaces (docs/protocol.md §11): a peer sees only the peers of its own space; the open
network (no code) is everyone else, as before; OPEN_SPACE=0 removes it."""

from __future__ import annotations

from typing import Any

import pytest

from server import protocol
from server.hub import Hub, Peer
from server.state import export_state, import_state
from tests.support.hubtools import FakeConn, apply, make_hub, send
from tests.unit.test_replica import join_on, relay, two_instances

OFFER = {"type": "offer", "sdp": "v=0\r\n"}


def enter(hub: Hub, label: str, name: str, space: str | None = None, **extra: Any) -> tuple[Peer, FakeConn]:
    conn = FakeConn(label)
    peer, out, _ = hub.connect(conn)
    apply(out, hub)
    conn.take()  # the `ready`
    data: dict[str, Any] = {"id": peer.id, "name": name, **extra}
    if space is not None:
        data["space"] = space
    send(hub, peer, {"type": "identify", "data": data})
    return peer, conn


def identify(hub: Hub, peer: Peer, name: str, space: str | None = None) -> None:
    data: dict[str, Any] = {"id": peer.id, "name": name}
    if space is not None:
        data["space"] = space
    send(hub, peer, {"type": "identify", "data": data})


def names(messages: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(m["data"]["name"], bool(m["data"].get("remove"))) for m in messages if m["type"] == "peer"]


def errors(messages: list[dict[str, Any]]) -> list[str]:
    return [m["data"]["code"] for m in messages if m["type"] == "error"]


def test_a_peer_is_listed_to_and_hears_about_only_its_own_space() -> None:
    hub, _ = make_hub()
    _open, o = enter(hub, "o", "Olga")
    _ann, a = enter(hub, "a", "Ann", "K7M2QX")
    bob, b = enter(hub, "b", "Bob", "k7m2qx")  # codes compare without case
    _carl, c = enter(hub, "c", "Carl", "PQR234")
    assert names(b.take()) == [("Ann", False)]
    assert names(a.take()) == [("Bob", False)]
    assert o.take() == [] and names(c.take()) == []
    assert bob.space == "K7M2QX"
    identify(hub, bob, "Bobby", "K7M2QX")  # a rename stays in the space
    assert names(a.take()) == [("Bobby", False)] and o.take() == [] and c.take() == []
    send(hub, bob, {"type": "leave", "data": {}})
    assert names(a.take()) == [("Bobby", True)] and o.take() == [] and c.take() == []


def test_the_open_network_is_as_before_and_never_sees_a_space() -> None:
    hub, _ = make_hub()
    _ann, a = enter(hub, "a", "Ann")
    _bob, b = enter(hub, "b", "Bob")
    enter(hub, "s", "Sam", "ZZZZ22")
    assert names(b.take()) == [("Ann", False)] and names(a.take()) == [("Bob", False)]
    assert [p.name for p in hub.listed()] == ["Ann", "Bob", "Sam"]  # every instance's count


def test_relays_and_invites_to_another_space_are_unknown_peers() -> None:
    hub, _ = make_hub()
    ann, a = enter(hub, "a", "Ann", "K7M2QX", caps=["group"])
    bob, b = enter(hub, "b", "Bob", "K7M2QX", caps=["group"])
    olga, o = enter(hub, "o", "Olga", caps=["group"])
    for conn in (a, b, o):
        conn.take()
    send(hub, olga, {"type": "offer", "data": {**OFFER, "target": ann.id}})
    (error,) = o.take()
    assert error["data"]["code"] == "unknown-peer" and error["data"]["target"] == ann.id
    assert a.take() == []
    send(hub, ann, {"type": "offer", "data": {**OFFER, "target": bob.id}})
    send(hub, bob, {"type": "accept", "data": {"type": "answer", "sdp": "v=0\r\n", "target": ann.id}})
    assert ann.call is not None and ann.call == bob.call
    send(hub, ann, {"type": "invite", "data": {"target": olga.id, "call": ann.call}})
    assert errors(a.take()) == ["unknown-peer"] and o.take() == []


def test_moving_to_another_space_leaves_the_old_one_and_joins_the_new() -> None:
    hub, _ = make_hub()
    ann, a = enter(hub, "a", "Ann", "K7M2QX", caps=["group"])
    bob, b = enter(hub, "b", "Bob", "K7M2QX", caps=["group"])
    _carl, c = enter(hub, "c", "Carl", "PQR234")
    _olga, o = enter(hub, "o", "Olga")
    send(hub, ann, {"type": "offer", "data": {**OFFER, "target": bob.id}})
    send(hub, bob, {"type": "accept", "data": {"type": "answer", "sdp": "v=0\r\n", "target": ann.id}})
    for conn in (a, b, c, o):
        conn.take()
    identify(hub, bob, "Bob", "PQR234")
    assert ann.call is None and bob.call is None  # nobody in the old space can reach him now
    assert ("Bob", True) in names(a.take())
    assert names(c.take()) == [("Bob", False)] and o.take() == []
    got = b.take()
    # The call's end (Ann no longer "in a call"), then the old space goes and the new one comes.
    assert names(got)[-2:] == [("Ann", True), ("Carl", False)]
    identify(hub, bob, "Bob")  # back to the open network
    assert names(c.take()) == [("Bob", True)] and names(o.take()) == [("Bob", False)]
    assert names(b.take()) == [("Carl", True), ("Olga", False)]


def test_bots_are_in_every_space() -> None:
    hub, _ = make_hub()
    bot_conn = FakeConn("echo")
    bot, out, _ = hub.connect(bot_conn, kind="bot")
    apply(out, hub)
    identify(hub, bot, "Echo test", "K7M2QX")  # a bot's space is ignored
    ann, a = enter(hub, "a", "Ann", "K7M2QX")
    assert names(a.take()) == [("Echo test", False)]
    _olga, o = enter(hub, "o", "Olga")
    assert names(o.take()) == [("Echo test", False)]
    send(hub, ann, {"type": "offer", "data": {**OFFER, "target": bot.id}})
    assert [m["type"] for m in bot_conn.take()][-1] == "offer"


@pytest.mark.parametrize("space", ["", "AB", "K7M2Q0", "K7M-QX", 123, "Q" * 17])
def test_a_malformed_space_is_a_bad_message_and_changes_nothing(space: object) -> None:
    hub, _ = make_hub()
    _ann, a = enter(hub, "a", "Ann")
    bob, b = enter(hub, "b", "Bob")
    a.take()
    b.take()
    send(hub, bob, {"type": "identify", "data": {"name": "Bob", "space": space}})
    (error,) = b.take()
    assert error["data"]["code"] == "bad-message" and error["data"]["ref"] == "identify"
    assert "space" in error["data"]["message"] and bob.space is None and a.take() == []


def test_without_the_open_space_an_identify_needs_a_code() -> None:
    hub, clock = make_hub(open_space=False)
    olga, o = enter(hub, "o", "Olga")
    assert errors(o.take()) == ["space-required"] and olga.name is None
    ann, a = enter(hub, "a", "Ann", "K7M2QX")
    assert a.take() == [] and o.take() == []  # Olga is not listed
    clock.advance(hub.limits.identify_timeout + 1)
    apply(hub.expire(), hub)
    assert o.closed is None  # waiting for a code is not silence
    identify(hub, olga, "Olga", "K7M2QX")
    assert names(o.take()) == [("Ann", False)] and names(a.take()) == [("Olga", False)]
    identify(hub, ann, "Ann")  # leaving to an open network that does not exist: refused
    assert errors(a.take()) == ["space-required"] and ann.space == "K7M2QX" and o.take() == []


def test_the_space_survives_a_restart() -> None:
    hub, _ = make_hub()
    enter(hub, "a", "Ann", "K7M2QX")
    state = export_state(hub, wall_now=5000.0)
    assert state["peers"][0]["space"] == "K7M2QX"
    again, _ = make_hub()
    assert import_state(again, state, wall_now=5001.0) == 1
    assert again.listed()[0].space == "K7M2QX"


def test_a_space_travels_between_instances() -> None:
    net, hub_a, hub_b, _ = two_instances()
    ann, a = join_on(net, hub_a, "a", "Ann")
    bob, b = join_on(net, hub_b, "b", "Bob")
    olga, o = join_on(net, hub_b, "o", "Olga")
    a.take()
    b.take()
    o.take()
    identify(hub_a, ann, "Ann", "K7M2QX")
    net.flush()
    assert names(b.take()) == [("Ann", True)] and names(o.take()) == [("Ann", True)]
    identify(hub_b, bob, "Bob", "K7M2QX")
    net.flush()
    assert names(a.take())[-1] == ("Bob", False) and names(o.take()) == [("Bob", True)]
    mirror = hub_a.peer(bob.id)
    assert mirror is not None and mirror.space == "K7M2QX"
    relay(net, hub_b, olga, {"type": "offer", "data": {**OFFER, "target": ann.id}})
    assert errors(o.take()) == ["unknown-peer"] and a.take() == []
    relay(net, hub_b, bob, {"type": "offer", "data": {**OFFER, "target": ann.id}})
    assert [m["type"] for m in a.take()] == ["offer"]


def test_clean_space_has_one_spelling() -> None:
    assert protocol.clean_space("k7m2qx") == "K7M2QX"
    assert protocol.clean_space("K7M2QI") is None and protocol.clean_space(None) is None


def arrive(hub: Hub, label: str, address: str, space: str) -> tuple[Peer, FakeConn]:
    conn = FakeConn(label)
    peer, out, _ = hub.connect(conn, address=address)
    apply(out, hub)
    conn.take()
    send(hub, peer, {"type": "identify", "data": {"name": label, "space": space}})
    return peer, conn


def refused(conn: FakeConn) -> bool:
    return any(m["type"] == "error" and m["data"]["code"] == "rate-limited" for m in conn.take())


def test_guessing_space_codes_has_a_budget_per_address_and_in_all() -> None:
    """Issue 18 finding 28: a wrong code lands in an empty space, so entering empty spaces
    is what guessing looks like; a space with someone in it stays open to its code."""
    hub, clock = make_hub(new_space_rate=6, new_space_total=20, join_rate=0)
    owner, _ = arrive(hub, "Owner", "10.0.0.1", "K7QPXM2A")
    guesses = [arrive(hub, f"G{i}", "10.0.0.66", f"AAAA{'ABCDEFGHJK'[i]}") for i in range(7)]
    assert [refused(conn) for _, conn in guesses] == [False] * 6 + [True]
    assert guesses[6][0].name is None and hub.peer(guesses[6][0].id) is not None  # not listed, not closed
    # The right code still works from the guessing address: someone is in that space.
    right, conn = arrive(hub, "Right", "10.0.0.66", "K7QPXM2A")
    assert not refused(conn) and right.space == "K7QPXM2A"
    # Moving to an empty space counts too, and the space stays as it was.
    send(hub, right, {"type": "identify", "data": {"name": "Right", "space": "ZZZZZZ"}})
    assert refused(conn) and right.space == "K7QPXM2A"
    clock.advance(10.0)  # 6 a minute: one more after 10 s
    send(hub, right, {"type": "identify", "data": {"name": "Right", "space": "ZZZZZZ"}})
    assert not refused(conn) and right.space == "ZZZZZZ"
    # All addresses together: 20 a minute, whoever tries. 8 were used, and 10 s brought
    # back 3.3: 15 left.
    spread = [arrive(hub, f"S{i}", f"10.1.0.{i}", f"BBBB{'ABCDEFGHJKMNPQRSTUV'[i]}") for i in range(16)]
    assert [refused(conn) for _, conn in spread] == [False] * 15 + [True]
    assert owner.space == "K7QPXM2A"


def test_space_move_goes_only_between_two_people_of_one_space() -> None:
    """Issue 18, finding 28: a way to remove who joined. Whoever removes someone sends the
    others a new code (`space-move`); the server relays it within the space only."""
    hub, _ = make_hub()
    ann, a = enter(hub, "a", "Ann", "K7M2QX")
    bob, b = enter(hub, "b", "Bob", "K7M2QX")
    olga, o = enter(hub, "o", "Olga")
    oscar, x = enter(hub, "x", "Oscar")
    for conn in (a, b, o, x):
        conn.take()
    send(hub, ann, {"type": "space-move", "data": {"target": bob.id, "code": "p4ck9wz2", "junk": 1}})
    (move,) = b.take()
    assert move == {"type": "space-move", "data": {"code": "P4CK9WZ2", "source": ann.id, "target": bob.id}}
    send(hub, ann, {"type": "space-move", "data": {"target": bob.id, "code": "P4CK9W0"}})  # 0: not a code
    assert errors(a.take()) == ["bad-message"] and b.take() == []
    send(hub, ann, {"type": "space-move", "data": {"target": olga.id, "code": "P4CK9WZ2"}})
    assert errors(a.take()) == ["unknown-peer"] and o.take() == []  # another space: not even listed
    send(hub, olga, {"type": "space-move", "data": {"target": oscar.id, "code": "P4CK9WZ2"}})
    assert errors(o.take()) == ["bad-message"] and x.take() == []  # the open network has no code
