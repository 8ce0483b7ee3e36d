"""The hub under the user-trial and attack findings of issue 9: leaving on purpose,
liveness pings, sockets that never identify, held relays and their bounds, limits per
address and for renames, reserved names, control-frame floods, frames never lost when a
socket is replaced."""

from __future__ import annotations

import json
from typing import Any

from server.hub import CLOSE_NORMAL, CLOSE_POLICY, Hub
from server.ratelimit import Verdict
from tests.support.hubtools import FakeConn, apply, join, make_hub, send

OFFER = {"type": "offer", "sdp": "v=0\r\n"}


def errors(conn: FakeConn) -> list[dict[str, Any]]:
    return [m["data"] for m in conn.take() if m["type"] == "error"]


def join_from(hub: Hub, label: str, name: str, address: str) -> tuple[Any, FakeConn]:
    conn = FakeConn(label)
    peer, out, _ = hub.connect(conn, address=address)
    apply(out, hub)
    apply(hub.receive(peer, json.dumps({"type": "identify", "data": {"name": name}})), hub)
    conn.take()
    return peer, conn


def test_leave_removes_at_once_and_the_token_only_brings_a_reload_back() -> None:
    hub, clock = make_hub(resume_grace=20, rejoin_window=10)
    alice, a = join(hub, "a", "Alice")
    _bob, b = join(hub, "b", "Bob")
    a.take()
    send(hub, alice, {"type": "leave", "data": {}})
    assert b.take() == [
        {"type": "peer", "data": {"id": alice.id, "name": "Alice", "kind": "browser", "remove": True}}
    ]
    assert a.closed == (CLOSE_NORMAL, "left")
    assert hub.peer(alice.id) is None and hub.connections == 1
    apply(hub.disconnect(alice, a), hub)  # the socket then closes: nothing more happens
    assert b.take() == []
    # A reload (which a page cannot tell from closing) comes back under the same id,
    # announced as a join, not as a resume.
    clock.advance(3)
    back = FakeConn("a-reloaded")
    again, out, resumed = hub.connect(back, alice.token)
    apply(out, hub)
    assert again.id == alice.id and not resumed and b.take() == []
    send(hub, again, {"type": "identify", "data": {"name": "Alice"}})
    assert b.take() == [{"type": "peer", "data": {"id": alice.id, "name": "Alice", "kind": "browser"}}]
    # Past the window, the token is worth nothing.
    send(hub, again, {"type": "leave", "data": {}})
    clock.advance(10.5)
    apply(hub.expire(), hub)
    late, _, resumed = hub.connect(FakeConn("a-late"), again.token)
    assert not resumed and late.id != alice.id


def test_ping_is_answered_with_pong_carrying_t() -> None:
    hub, _ = make_hub()
    alice, a = join(hub, "a", "Alice")
    send(hub, alice, {"type": "ping", "data": {"t": 12.5}})
    assert a.take() == [{"type": "pong", "data": {"t": 12.5}}]
    send(hub, alice, {"type": "ping", "data": {"t": "soon"}})
    assert errors(a)[0]["code"] == "bad-message"
    # Before identifying too: a tab checks its link from the start.
    conn = FakeConn("new")
    peer, out, _ = hub.connect(conn)
    apply(out, hub)
    conn.take()
    send(hub, peer, {"type": "ping", "data": {}})
    assert conn.take() == [{"type": "pong", "data": {"t": None}}]


def test_a_socket_that_never_identifies_is_closed_after_the_timeout() -> None:
    hub, clock = make_hub(identify_timeout=10)
    _alice, a = join(hub, "a", "Alice")
    lurker_conn = FakeConn("lurker")
    lurker, _, _ = hub.connect(lurker_conn)
    assert hub.next_expiry() == clock.now + 10
    clock.advance(9.9)
    assert not apply(hub.expire(), hub).closes
    clock.advance(0.2)
    apply(hub.expire(), hub)
    assert lurker_conn.closed == (CLOSE_POLICY, "identify timeout") and a.closed is None
    apply(hub.disconnect(lurker, lurker_conn), hub)
    assert hub.peer(lurker.id) is None and hub.connections == 1


def test_relay_to_an_away_peer_is_held_and_the_sender_told() -> None:
    hub, _ = make_hub(resume_grace=20)
    alice, a = join(hub, "a", "Alice")
    bob, b = join(hub, "b", "Bob")
    apply(hub.disconnect(bob, b), hub)
    send(hub, alice, {"type": "offer", "data": {**OFFER, "target": bob.id}})
    (notice,) = errors(a)
    assert notice["code"] == "peer-away" and notice["ref"] == "offer" and notice["target"] == bob.id
    candidate = {"candidate": {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host"}, "target": bob.id}
    send(hub, alice, {"type": "icecandidate", "data": candidate})
    assert a.take() == []  # candidates are held without a notice each
    b2 = FakeConn("b2")
    _, out, resumed = hub.connect(b2, bob.token)
    apply(out, hub)
    assert resumed and [m["type"] for m in b2.take()] == ["ready", "offer", "icecandidate"]


def test_held_relays_are_bounded_by_count_and_bytes_and_refusals_are_told() -> None:
    hub, _ = make_hub(resume_grace=20, rate_limit=1e6, rate_burst=10**6, pending_bytes=10_000)
    alice, a = join(hub, "a", "Alice")
    bob, b = join(hub, "b", "Bob")
    apply(hub.disconnect(bob, b), hub)
    for i in range(70):  # frame count: 64 are held, the rest refused
        send(hub, alice, {"type": "hangup", "data": {"target": bob.id, "reason": f"r{i}"}})
    codes = [e["code"] for e in errors(a)]
    assert codes.count("peer-away") == 64 and codes.count("undelivered") == 6
    b2 = FakeConn("b2")
    _, out, _ = hub.connect(b2, bob.token)
    apply(out, hub)
    held = [m["data"]["reason"] for m in b2.take()[1:]]
    assert held == [f"r{i}" for i in range(64)]  # the first ones, in order: none accepted is lost
    assert hub.pending_bytes == 0
    # Bytes: 3 KB offers against a 10,000-byte backlog.
    apply(hub.disconnect(bob, b2), hub)
    for _ in range(5):
        send(hub, alice, {"type": "offer", "data": {"type": "offer", "sdp": "x" * 3000, "target": bob.id}})
    codes = [e["code"] for e in errors(a)]
    assert codes == ["peer-away"] * 3 + ["undelivered"] * 2
    assert 9000 < hub.pending_bytes <= 10_000


def test_held_relays_are_bounded_in_total_across_away_peers() -> None:
    hub, _ = make_hub(resume_grace=20, rate_limit=1e6, rate_burst=10**6, pending_total_bytes=20_000)
    alice, a = join(hub, "a", "Alice")
    away = [join(hub, f"g{i}", f"Ghost {i}") for i in range(5)]
    for peer, conn in away:
        apply(hub.disconnect(peer, conn), hub)
    for peer, _ in away:
        for _ in range(2):
            send(
                hub, alice, {"type": "offer", "data": {"type": "offer", "sdp": "x" * 3000, "target": peer.id}}
            )
    codes = [e["code"] for e in errors(a)]
    assert codes.count("peer-away") == 6 and codes.count("undelivered") == 4
    assert hub.pending_bytes <= 20_000


def test_one_address_shares_one_message_budget_across_its_sockets() -> None:
    hub, _ = make_hub(rate_limit=1e6, rate_burst=10**6, address_rate_limit=10)
    victim, v = join_from(hub, "v", "Victim", "10.0.0.9")
    attackers = [join_from(hub, f"x{i}", f"X{i}", "10.0.0.66") for i in range(3)]
    for peer, _ in attackers:
        for _ in range(30):
            send(hub, peer, {"type": "hangup", "data": {"target": victim.id}})
    # A burst of twice the rate (20), less the 3 identifies, whatever the number of
    # sockets; the clock stood still.
    assert sum(m["type"] == "hangup" for m in v.take()) == 17
    assert any(e["code"] == "rate-limited" for _, conn in attackers for e in errors(conn))
    # Reconnecting does not refill it: the budget belongs to the address.
    f = FakeConn("x-new")
    fresh, out, _ = hub.connect(f, address="10.0.0.66")
    apply(out, hub)
    f.take()
    send(hub, fresh, {"type": "ping", "data": {}})
    assert f.take() == []  # no pong: dropped (the address was warned already this second)
    # Another address is unaffected.
    other, _ = join_from(hub, "o", "Other", "10.0.0.7")
    v.take()  # Other's arrival
    send(hub, other, {"type": "hangup", "data": {"target": victim.id}})
    assert [m["type"] for m in v.take()] == ["hangup"]


def test_renames_have_their_own_budget_per_address() -> None:
    hub, clock = make_hub(rename_rate=1, rename_burst=5)
    watcher, w = join_from(hub, "w", "Watcher", "10.0.0.1")
    renamers = [join_from(hub, f"r{i}", f"R{i}", "10.0.0.2") for i in range(2)]
    w.take()
    for round_ in range(5):
        for peer, _ in renamers:
            send(hub, peer, {"type": "identify", "data": {"name": f"{peer.name[:2]} take {round_}"}})
    announced = [m for m in w.take() if m["type"] == "peer"]
    assert len(announced) == 5  # the burst, shared by both sockets of the address
    refused = [e for _, conn in renamers for e in errors(conn)]
    assert len(refused) == 5 and all(e["code"] == "rate-limited" and e["ref"] == "identify" for e in refused)
    clock.advance(1.0)
    peer, _ = renamers[0]
    send(hub, peer, {"type": "identify", "data": {"name": "one more"}})
    assert [m["data"]["name"] for m in w.take()] == ["one more"]
    assert watcher.name == "Watcher"


def test_bot_names_are_reserved_against_lookalikes() -> None:
    hub, _ = make_hub()
    bot_conn = FakeConn("bot")
    bot, out, _ = hub.connect(bot_conn, kind="bot")
    apply(out, hub)
    send(hub, bot, {"type": "identify", "data": {"name": "Echo test"}})
    alice, a = join(hub, "a", "Alice")
    # Case, accents, spacing, a Cyrillic "Е" in a Latin word, an all-Cyrillic lookalike
    # word, a soft hyphen.
    lookalikes = (
        "Echo test",
        "echo TEST",
        " Écho  test ",
        "\u0415cho test",
        "\u0415\u0441\u04bb\u043e test",
        "Echo\u00ad test",
    )
    for fake in lookalikes:
        send(hub, alice, {"type": "identify", "data": {"name": fake}})
        assert errors(a)[0]["code"] == "bad-name", fake
        assert alice.name == "Alice"
    send(hub, alice, {"type": "identify", "data": {"name": "Echo tester"}})
    assert alice.name == "Echo tester"


def test_control_frames_count_against_the_rate_limit() -> None:
    hub, clock = make_hub(rate_limit=50, rate_burst=200)
    alice, _ = join(hub, "a", "Alice")
    answered = 0
    closed = False
    for _ in range(8):  # 8 s of a 1,000 pings/s flood
        for _ in range(1000):
            answer, out = hub.receive_control(alice)
            answered += answer
            closed = closed or bool(out.closes)
        clock.advance(1.0)
    assert closed, "a ping flood must end in a 1008 close"
    assert answered < 200 + 8 * 50 + 1


def test_frames_queued_on_a_replaced_socket_go_to_the_new_one() -> None:
    hub, _ = make_hub(resume_grace=20)
    alice, a = join(hub, "a", "Alice")

    class Stuck(FakeConn):  # the half-open socket never wrote these
        def take_unsent(self) -> list[str]:
            return [
                '{"type":"hangup","data":{"reason":"queued-1"}}',
                '{"type":"hangup","data":{"reason":"queued-2"}}',
            ]

    bob_old = Stuck("b-old")
    bob, out, _ = hub.connect(bob_old)
    apply(out, hub)
    send(hub, bob, {"type": "identify", "data": {"name": "Bob"}})
    bob_new = FakeConn("b-new")
    _, out, resumed = hub.connect(bob_new, bob.token)
    apply(out, hub)
    frames = bob_new.take()
    assert resumed and [m["type"] for m in frames] == ["ready", "hangup", "hangup"]
    assert [m["data"]["reason"] for m in frames[1:]] == ["queued-1", "queued-2"]
    assert alice.conn is a


def test_a_dropped_socket_keeps_its_unwritten_frames_for_the_resume() -> None:
    hub, _ = make_hub(resume_grace=20)

    class Dying(FakeConn):
        def take_unsent(self) -> list[str]:
            return ['{"type":"offer","data":{"sdp":"unsent"}}']

    conn = Dying("dying")
    bob, out, _ = hub.connect(conn)
    apply(out, hub)
    send(hub, bob, {"type": "identify", "data": {"name": "Bob"}})
    apply(hub.disconnect(bob, conn), hub)
    again = FakeConn("again")
    _, out, _ = hub.connect(again, bob.token)
    apply(out, hub)
    assert [m["type"] for m in again.take()] == ["ready", "offer"]


def test_token_bucket_full_means_rested() -> None:
    from server.ratelimit import TokenBucket

    bucket = TokenBucket(10, 20, now=0.0)
    assert bucket.full(0.0)
    assert bucket.take(0.0) is Verdict.ALLOW
    assert not bucket.full(0.0) and bucket.full(0.1)


def test_joins_from_one_address_wait_their_turn_and_churn_is_bounded() -> None:
    """Connect, identify, leave, again: each join and leave reached everyone (52,000
    frames/s at 200 bystanders); joins now have a budget per address."""
    hub, clock = make_hub(join_rate=5, join_burst=20, rejoin_window=0)
    _watcher, w = join_from(hub, "w", "Watcher", "10.0.0.1")
    w.take()
    for i in range(100):  # one instant: 100 join-and-leave cycles from one address
        conn = FakeConn(f"x{i}")
        peer, out, _ = hub.connect(conn, address="10.0.0.66")
        apply(out, hub)
        apply(hub.receive(peer, json.dumps({"type": "identify", "data": {"name": f"X{i}"}})), hub)
        apply(hub.receive(peer, json.dumps({"type": "leave", "data": {}})), hub)
        apply(hub.disconnect(peer, conn), hub)
    frames = w.take()
    assert len(frames) == 2 * 20  # the burst: a join and a leave each, then nothing
    # A join past the budget is not refused: it waits, then goes through by itself.
    late_conn = FakeConn("late")
    late, out, _ = hub.connect(late_conn, address="10.0.0.66")
    apply(out, hub)
    late_conn.take()
    apply(hub.receive(late, json.dumps({"type": "identify", "data": {"name": "Late"}})), hub)
    assert late.name is None and late_conn.take() == [] and w.take() == []
    clock.advance(0.25)
    apply(hub.expire(), hub)
    assert late.name == "Late" and [m["data"]["name"] for m in w.take()] == ["Late"]
    clock.advance(30)  # a deferred join is not a silent socket: never closed for it
    apply(hub.expire(), hub)
    assert late_conn.closed is None


def test_at_capacity_the_address_holding_the_most_makes_room() -> None:
    """Issue 18 finding 33: idle sockets from a few addresses held MAX_CLIENTS and every
    honest newcomer was refused. At capacity the heaviest address loses its newest socket
    when it holds more than twice what the newcomer's address would."""
    hub, clock = make_hub(join_rate=0)
    squat = []
    for i in range(10):
        conn = FakeConn(f"squat{i}")
        peer, out, _ = hub.connect(conn, address="10.0.0.66")
        apply(out, hub)
        squat.append((peer, conn))
        clock.advance(0.01)
    honest = FakeConn("honest")
    apply(hub.connect(honest, address="10.0.0.7")[1], hub)
    out = hub.shed_for("10.0.0.8")
    assert out is not None
    apply(out, hub)
    assert squat[-1][1].closed == (1013, "server full: too many sockets from one address")
    assert all(conn.closed is None for _, conn in squat[:-1]) and honest.closed is None
    # An address with a fair share is never shed: 3 against a newcomer that would have 2.
    hub2, _ = make_hub(join_rate=0)
    for i in range(3):
        apply(hub2.connect(FakeConn(f"a{i}"), address="10.0.0.1")[1], hub2)
    apply(hub2.connect(FakeConn("b"), address="10.0.0.2")[1], hub2)
    assert hub2.shed_for("10.0.0.2") is None
    assert hub2.shed_for("10.0.0.3") is not None  # 3 > 2 x 1
