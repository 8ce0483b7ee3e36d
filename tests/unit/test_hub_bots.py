"""Bots (the in-process echo peer) are not metered by the per-socket rate limit (issue 9,
"Attacks" 8): they answer callers one message per caller message, and the callers are the
ones limited, so metering the bot only let callers' junk get it closed with 1008."""

from __future__ import annotations

import json

from server.hub import Hub
from tests.support.hubtools import FakeClock, FakeConn, apply, join, make_hub


def join_bot(hub: Hub, name: str) -> tuple[object, FakeConn]:
    conn = FakeConn(name)
    peer, out, _ = hub.connect(conn, kind="bot")
    apply(out, hub)
    apply(hub.receive(peer, json.dumps({"type": "identify", "data": {"id": peer.id, "name": name}})), hub)
    conn.take()
    return peer, conn


def flood(hub: Hub, clock: FakeClock, peer: object, target: str, seconds: int, per_second: int) -> None:
    reject = json.dumps({"type": "reject", "data": {"target": target, "reason": "busy"}})
    for _ in range(seconds):
        for _ in range(per_second):
            apply(hub.receive(peer, reject), hub)  # type: ignore[arg-type]
        clock.advance(1.0)


def test_a_bot_answering_far_above_the_socket_rate_is_never_dropped_or_closed() -> None:
    hub, clock = make_hub(rate_limit=2.0, rate_burst=4, address_rate_limit=0)
    bot, bot_conn = join_bot(hub, "Echo test")
    caller, caller_conn = join(hub, "caller", "Ann")
    flood(hub, clock, bot, caller.id, seconds=8, per_second=20)  # 10x the rate, 8 s on end
    assert bot_conn.closed is None
    got = caller_conn.take()
    assert len(got) == 160 and all(m["type"] == "reject" for m in got)


def test_a_browser_doing_the_same_is_still_limited_and_closed() -> None:
    """The same flood from an ordinary socket: the limit itself is unchanged."""
    hub, clock = make_hub(rate_limit=2.0, rate_burst=4, address_rate_limit=0)
    browser, browser_conn = join(hub, "browser", "Mallory")
    caller, caller_conn = join(hub, "caller", "Ann")
    flood(hub, clock, browser, caller.id, seconds=8, per_second=20)
    assert browser_conn.closed is not None and browser_conn.closed[0] == 1008
    assert len(caller_conn.take()) < 40
