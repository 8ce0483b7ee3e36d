"""The signalling core, driven directly: announcements, resume, routing, stamping,
errors, rate limiting (injected clock), restart state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.hub import CLOSE_POLICY, CLOSE_REPLACED
from server.state import export_state, import_state
from tests.support.hubtools import FakeConn, apply, join, make_hub, send

OFFER = {"type": "offer", "sdp": "v=0\r\n"}


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


def test_ready_carries_id_token_version_and_config() -> None:
    hub, _ = make_hub()
    conn = FakeConn("a")
    peer, out, resumed = hub.connect(conn)
    apply(out, hub)
    (ready,) = conn.take()
    assert ready["type"] == "ready" and ready["id"] == peer.id and ready["version"] == "v1"
    assert len(ready["token"]) >= 32 and not resumed
    assert ready["config"]["iceServers"] == [] and ready["config"]["maxMessageBytes"] == 65536
    other, out, _ = hub.connect(FakeConn("b"))
    assert other.id != peer.id and other.token != peer.token


def test_join_sends_list_to_newcomer_then_announces_it() -> None:
    hub, _ = make_hub()
    _alice, a = join(hub, "a", "Alice")
    _bob, b = join(hub, "b", "Bob")
    a.take()
    carol_conn = FakeConn("c")
    carol, out, _ = hub.connect(carol_conn)
    apply(out, hub)
    carol_conn.take()
    out = send(hub, carol, {"type": "identify", "data": {"id": carol.id, "name": "Carol"}})
    # Order: the newcomer's list comes before anyone hears about the newcomer.
    recipients = [hub.connection(peer_id) for peer_id, _ in out.sends]
    assert recipients[:2] == [carol_conn, carol_conn] and set(recipients[2:]) == {a, b}
    assert [m["data"]["name"] for m in carol_conn.take()] == ["Alice", "Bob"]
    for conn in (a, b):
        (msg,) = conn.take()
        assert msg == {"type": "peer", "data": {"id": carol.id, "name": "Carol", "kind": "browser"}}


def test_unidentified_clients_are_invisible() -> None:
    hub, _ = make_hub()
    _, a = join(hub, "a", "Alice")
    lurker, lurker_conn = join(hub, "l")  # connected, never identified
    assert [p.name for p in hub.listed()] == ["Alice"]
    _, b = join(hub, "b", "Bob")
    assert a.take() == [
        {"type": "peer", "data": {"id": hub.listed()[1].id, "name": "Bob", "kind": "browser"}}
    ]
    assert lurker_conn.take() == []
    apply(hub.disconnect(lurker, lurker_conn), hub)
    assert a.take() == [] and b.take() == []


def test_rename_announced_to_others_only_when_changed() -> None:
    hub, _ = make_hub()
    alice, a = join(hub, "a", "Alice")
    _, b = join(hub, "b", "Bob")
    a.take()
    send(hub, alice, {"type": "identify", "data": {"id": alice.id, "name": "  Alice   Smith "}})
    assert b.take() == [{"type": "peer", "data": {"id": alice.id, "name": "Alice Smith", "kind": "browser"}}]
    assert a.take() == []
    send(hub, alice, {"type": "identify", "data": {"id": alice.id, "name": "Alice Smith"}})
    assert b.take() == []


def test_bad_name_keeps_old_name() -> None:
    hub, _ = make_hub(max_name_length=5)
    alice, a = join(hub, "a", "Alice")
    for bad in ["", "   ", "\x00\x01", "\u202e\u200b", "TooLongName"]:
        send(hub, alice, {"type": "identify", "data": {"name": bad}})
        (err,) = a.take()
        assert err["type"] == "error" and err["data"]["code"] == "bad-name"
        assert err["data"]["ref"] == "identify"
    assert hub.listed()[0].name == "Alice"


def test_bad_name_on_first_identify_leaves_client_unlisted() -> None:
    hub, _ = make_hub()
    peer, conn = join(hub, "a")
    send(hub, peer, {"type": "identify", "data": {"name": "\t\n"}})
    assert conn.take()[0]["data"]["code"] == "bad-name"
    assert hub.listed() == []


def test_names_are_data_not_markup() -> None:
    hub, _ = make_hub()
    _, _ = join(hub, "a", "<img src=x onerror=alert(1)>")
    assert hub.listed()[0].name == "<img src=x onerror=alert(1)>"  # escaped by the client, kept intact


def test_leave_is_announced_after_grace() -> None:
    hub, clock = make_hub(resume_grace=20)
    alice, a = join(hub, "a", "Alice")
    _, b = join(hub, "b", "Bob")
    a.take()
    apply(hub.disconnect(alice, a), hub)
    assert b.take() == [] and [p.name for p in hub.listed()] == ["Alice", "Bob"]
    clock.advance(19.9)
    assert not apply(hub.expire(), hub)
    clock.advance(0.2)
    apply(hub.expire(), hub)
    assert b.take() == [
        {"type": "peer", "data": {"id": alice.id, "name": "Alice", "kind": "browser", "remove": True}}
    ]
    assert [p.name for p in hub.listed()] == ["Bob"]


def test_no_grace_announces_at_once() -> None:
    hub, _ = make_hub(resume_grace=0)
    alice, a = join(hub, "a", "Alice")
    _, b = join(hub, "b", "Bob")
    apply(hub.disconnect(alice, a), hub)
    assert b.take()[0]["data"]["remove"] is True


def test_resume_inside_grace_keeps_id_silently() -> None:
    hub, clock = make_hub(resume_grace=20)
    alice, a = join(hub, "a", "Alice")
    _, b = join(hub, "b", "Bob")
    a.take()
    old_token = alice.token
    apply(hub.disconnect(alice, a), hub)
    clock.advance(10)
    a2 = FakeConn("a2")
    peer, out, resumed = hub.connect(a2, old_token)
    apply(out, hub)
    (ready,) = a2.take()
    assert resumed and peer is alice and ready["id"] == alice.id and ready["token"] != old_token
    send(hub, peer, {"type": "identify", "data": {"name": "Alice"}})
    assert [m["data"]["name"] for m in a2.take()] == ["Bob"]  # the list again, for this socket
    assert b.take() == []  # no leave, no join
    clock.advance(30)
    assert not apply(hub.expire(), hub)
    # The old token was consumed.
    again, out, resumed = hub.connect(FakeConn("x"), old_token)
    assert not resumed and again.id != alice.id


def test_resume_after_grace_gets_new_id() -> None:
    hub, clock = make_hub(resume_grace=20)
    alice, a = join(hub, "a", "Alice")
    token = alice.token
    apply(hub.disconnect(alice, a), hub)
    clock.advance(21)
    apply(hub.expire(), hub)
    peer, _, resumed = hub.connect(FakeConn("a2"), token)
    assert not resumed and peer.id != alice.id


def test_resume_while_old_socket_half_open_replaces_it() -> None:
    hub, _ = make_hub()
    alice, a = join(hub, "a", "Alice")
    _, b = join(hub, "b", "Bob")
    a2 = FakeConn("a2")
    peer, out, resumed = hub.connect(a2, alice.token)
    apply(out, hub)
    assert resumed and a.closed is not None and a.closed[0] == CLOSE_REPLACED
    assert hub.connections == 2
    # The old socket's late close must not end the resumed session.
    apply(hub.disconnect(alice, a), hub)
    assert peer.conn is a2 and b.take() == []


def test_messages_to_a_peer_in_grace_are_delivered_on_resume() -> None:
    hub, _ = make_hub()
    alice, a = join(hub, "a", "Alice")
    bob, _b = join(hub, "b", "Bob")
    apply(hub.disconnect(alice, a), hub)
    send(hub, bob, {"type": "icecandidate", "data": {"target": alice.id, "candidate": None}})
    a2 = FakeConn("a2")
    _, out, _ = hub.connect(a2, alice.token)
    apply(out, hub)
    assert types(a2.take()) == ["ready", "icecandidate"]


def test_relay_routes_to_target_only_and_stamps_sender() -> None:
    hub, _ = make_hub()
    alice, a = join(hub, "a", "Alice")
    bob, b = join(hub, "b", "Bob")
    _, c = join(hub, "c", "Carol")
    a.take(), b.take()
    send(hub, alice, {"type": "offer", "data": {**OFFER, "source": bob.id, "target": bob.id}})
    (offer,) = b.take()
    assert offer == {"type": "offer", "data": {**OFFER, "source": alice.id, "target": bob.id}}
    assert a.take() == [] and c.take() == []
    cand = {"candidate": "candidate:1 1 udp 1 192.0.2.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    send(
        hub,
        bob,
        {
            "type": "icecandidate",
            "data": {"id": "forged", "source": "forged", "target": alice.id, "candidate": cand},
        },
    )
    (ice,) = a.take()
    assert (
        ice["data"]["id"] == bob.id and ice["data"]["source"] == bob.id and ice["data"]["candidate"] == cand
    )
    send(hub, bob, {"type": "accept", "data": {"type": "answer", "sdp": "x", "target": alice.id}})
    send(hub, bob, {"type": "reject", "data": {"target": alice.id, "reason": "busy"}})
    send(hub, bob, {"type": "hangup", "data": {"target": alice.id}})
    assert types(a.take()) == ["accept", "reject", "hangup"]
    assert c.take() == []


@pytest.mark.parametrize(
    ("message", "code", "ref"),
    [
        ("{not json", "bad-json", None),
        ("", "bad-json", None),
        ("[1,2]", "bad-message", None),
        ('"identify"', "bad-message", None),
        ('{"data":{}}', "bad-message", None),
        ('{"type":7}', "bad-message", None),
        ('{"type":"dance","data":{}}', "unknown-type", "dance"),
        ('{"type":"ready","data":{}}', "unknown-type", "ready"),
        ('{"type":"offer"}', "bad-message", "offer"),
        ('{"type":"offer","data":[]}', "bad-message", "offer"),
        ('{"type":"offer","data":{"sdp":"x"}}', "bad-message", "offer"),
        ('{"type":"offer","data":{"target":"T","sdp":5}}', "bad-message", "offer"),
        ('{"type":"offer","data":{"target":"T","type":"answer","sdp":"x"}}', "bad-message", "offer"),
        ('{"type":"accept","data":{"target":"T","type":"offer","sdp":"x"}}', "bad-message", "accept"),
        ('{"type":"icecandidate","data":{"target":"T"}}', "bad-message", "icecandidate"),
        ('{"type":"icecandidate","data":{"target":"T","candidate":"x"}}', "bad-message", "icecandidate"),
        (
            '{"type":"icecandidate","data":{"target":"T","candidate":{"candidate":"c","sdpMLineIndex":-1}}}',
            "bad-message",
            "icecandidate",
        ),
        ('{"type":"reject","data":{"target":"T","reason":5}}', "bad-message", "reject"),
        ('{"type":"hangup","data":{"target":""}}', "bad-message", "hangup"),
        ('{"type":"identify","data":{"name":5}}', "bad-message", "identify"),
        ('{"type":"identify","data":{"name":"x","id":5}}', "bad-message", "identify"),
        ('{"type":"offer","data":{"target":"nobody","type":"offer","sdp":"x"}}', "unknown-peer", "offer"),
    ],
)
def test_every_error_code(message: str, code: str, ref: str | None) -> None:
    hub, _ = make_hub()
    alice, a = join(hub, "a", "Alice")
    send(hub, alice, message)
    (err,) = a.take()
    assert err["type"] == "error" and err["data"]["code"] == code
    assert err["data"].get("ref") == ref
    assert isinstance(err["data"]["message"], str) and err["data"]["message"]
    # The connection stays usable.
    send(hub, alice, {"type": "identify", "data": {"name": "Still here"}})
    assert hub.listed()[0].name == "Still here"


def test_relay_before_identify_is_not_identified() -> None:
    hub, _ = make_hub()
    bob, _ = join(hub, "b", "Bob")
    stranger, s = join(hub, "s")
    send(hub, stranger, {"type": "offer", "data": {**OFFER, "target": bob.id}})
    assert s.take()[0]["data"]["code"] == "not-identified"


def test_unidentified_or_departed_target_is_unknown_peer() -> None:
    hub, clock = make_hub(resume_grace=1)
    alice, a = join(hub, "a", "Alice")
    lurker, _ = join(hub, "l")
    bob, b = join(hub, "b", "Bob")
    a.take()
    for target in (lurker.id, alice.id, "x" * 200):
        send(hub, alice, {"type": "offer", "data": {**OFFER, "target": target}})
        assert a.take()[0]["data"]["code"] in ("unknown-peer", "bad-message")
    apply(hub.disconnect(bob, b), hub)
    clock.advance(2)
    apply(hub.expire(), hub)
    a.take()
    send(hub, alice, {"type": "offer", "data": {**OFFER, "target": bob.id}})
    assert a.take()[0]["data"]["code"] == "unknown-peer"


def test_binary_frames_get_bad_message() -> None:
    hub, _ = make_hub()
    alice, a = join(hub, "a", "Alice")
    apply(hub.receive_binary(alice), hub)
    assert a.take()[0]["data"]["code"] == "bad-message"


def test_rate_limit_drops_warns_once_per_second_and_recovers() -> None:
    hub, clock = make_hub(rate_limit=10, rate_burst=20)
    alice, a = join(hub, "a", "Alice")
    bob, b = join(hub, "b", "Bob")
    a.take()
    ice = {"type": "icecandidate", "data": {"target": bob.id, "candidate": None}}
    for _ in range(30):
        send(hub, alice, ice)
    delivered = len(b.take())
    errors = a.take()
    assert delivered == 19  # burst of 20, minus the identify
    assert [e["data"]["code"] for e in errors] == ["rate-limited"]
    clock.advance(0.5)  # 5 tokens back
    for _ in range(10):
        send(hub, alice, ice)
    assert len(b.take()) == 5 and a.take() == []  # still within the same warning second
    clock.advance(0.6)
    for _ in range(10):
        send(hub, alice, ice)
    assert len(b.take()) == 6
    assert [e["data"]["code"] for e in a.take()] == ["rate-limited"]


def test_sustained_abuse_closes_with_1008() -> None:
    hub, clock = make_hub(rate_limit=10, rate_burst=10)
    alice, a = join(hub, "a", "Alice")
    ice = {"type": "icecandidate", "data": {"target": alice.id, "candidate": None}}
    for _second in range(6):
        for _ in range(40):  # 4x the rate, every second
            send(hub, alice, ice)
            if a.closed:
                break
        clock.advance(1.0)
    assert a.closed is not None and a.closed[0] == CLOSE_POLICY


def test_short_bursts_are_not_closed() -> None:
    hub, clock = make_hub(rate_limit=10, rate_burst=10)
    alice, a = join(hub, "a", "Alice")
    ice = {"type": "icecandidate", "data": {"target": alice.id, "candidate": None}}
    for second in range(20):
        for _ in range(40 if second % 3 == 0 else 5):
            send(hub, alice, ice)
        clock.advance(1.0)
    assert a.closed is None


def test_version_push_sends_ready_with_same_ids() -> None:
    hub, _ = make_hub()
    alice, a = join(hub, "a", "Alice")
    lurker, lurker_conn = join(hub, "l")
    apply(hub.set_version("v2"), hub)
    (ra,) = a.take()
    (rl,) = lurker_conn.take()
    assert (ra["id"], ra["version"]) == (alice.id, "v2")
    assert (rl["id"], rl["version"]) == (lurker.id, "v2")


def test_state_survives_a_restart() -> None:
    hub, clock = make_hub(resume_grace=20)
    alice, a = join(hub, "a", "Alice")
    bob, b = join(hub, "b", "Bob")
    _, _ = join(hub, "l")  # unidentified: not kept
    apply(hub.disconnect(alice, a), hub)
    apply(hub.disconnect(bob, b), hub)
    clock.advance(5)  # bob and alice gone for 5 s at save time
    state = export_state(hub, wall_now=50_000.0)
    assert alice.token not in json.dumps(state)  # only hashes leave the process

    fresh, fresh_clock = make_hub(resume_grace=20)
    assert import_state(fresh, state, wall_now=50_010.0) == 2  # 10 s of downtime
    assert [p.name for p in fresh.listed()] == ["Alice", "Bob"]
    conn = FakeConn("a2")
    peer, _out, resumed = fresh.connect(conn, alice.token)
    assert resumed and peer.id == alice.id
    fresh_clock.advance(5.1)  # 5 + 10 + 5.1 > 20: bob's grace is over
    apply(fresh.expire(), fresh)
    assert [p.name for p in fresh.listed()] == ["Alice"]


def test_stale_or_malformed_state_is_ignored() -> None:
    hub, _ = make_hub(resume_grace=20)
    _alice, _a = join(hub, "a", "Alice")
    state = export_state(hub, wall_now=1000.0)
    fresh, _ = make_hub(resume_grace=20)
    assert import_state(fresh, state, wall_now=1030.0) == 0
    assert import_state(fresh, {"saved_at": "x"}, wall_now=1.0) == 0
    assert import_state(fresh, {"peers": [{"id": 1}]}, wall_now=1.0) == 0
    assert fresh.listed() == []
