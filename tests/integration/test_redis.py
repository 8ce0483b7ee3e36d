"""Several instances on one Redis (issue 14, items 1-2): a real redis-server, two servers.

Most tests run two apps in this test's event loop (`start_server(redis_url=...)`); the
kill -9 and exit-code tests run `python -m server` processes. Grace periods are short and
client counts small: other engineers run tests on the same two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from server.cluster import CLUSTER
from tests.support.benchproc import start_server as start_process
from tests.support.benchproc import stop_server as stop_process
from tests.support.liveserver import LiveServer, StartServer
from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.redisserver import RedisServer
from tests.support.rtcclient import RtcClient
from tests.support.servers import run_to_exit, server_env

GRACE = 2.0


@pytest.fixture
async def pair(start_server: StartServer, redis_server: RedisServer) -> AsyncIterator[list[LiveServer]]:
    yield [await start_server(redis_url=redis_server.url, resume_grace=GRACE) for _ in range(2)]


async def frame(
    client: RtcClient, wanted: Callable[[dict[str, Any]], bool], within: float = 5
) -> dict[str, Any]:
    """The next frame `wanted` accepts, skipping others (peer lists, call updates)."""
    deadline = time.monotonic() + within
    while True:
        message = await client.recv(max(0.05, deadline - time.monotonic()))
        if wanted(message):
            return message


def about(peer_id: str, remove: bool = False, name: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(m: dict[str, Any]) -> bool:
        data = m.get("data", {})
        return (
            m["type"] == "peer"
            and data.get("id") == peer_id
            and bool(data.get("remove")) == remove
            and (name is None or data.get("name") == name)
        )

    return check


def of_type(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == kind and all(m["data"].get(k) == v for k, v in fields.items())


async def frames_for(client: RtcClient, seconds: float) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            seen.append(await client.recv(left))
        except TimeoutError:
            break
    return seen


async def join(
    http: aiohttp.ClientSession, live: LiveServer, name: str, *others: LiveServer, **kw: Any
) -> RtcClient:
    """Connect and identify on `live`, once every instance in `others` can see the peer."""
    client = await RtcClient.connect(http, live.ws_url + kw.pop("query", ""))
    await client.send({"type": "identify", "data": {"id": client.id, "name": name, **kw}})
    for other in others:
        await eventually(lambda o=other: o.hub.peer(client.id) is not None, 5, what=f"{name} mirrored")
    return client


async def test_clients_on_two_instances_list_rename_relay_and_call(
    pair: list[LiveServer], http: aiohttp.ClientSession
) -> None:
    a_server, b_server = pair
    alice = await join(http, a_server, "Alice", b_server, caps=["group"])
    bob = await join(http, b_server, "Bob", a_server, caps=["group"])
    await frame(bob, about(alice.id, name="Alice"))  # Bob's list has Alice, held by the other instance
    await frame(alice, about(bob.id, name="Bob"))  # Alice hears Bob join

    await alice.send({"type": "identify", "data": {"id": alice.id, "name": "Alice B."}})
    await frame(bob, about(alice.id, name="Alice B."))

    await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "v=0 a", "target": bob.id}})
    offer = await frame(bob, of_type("offer"))
    assert offer["data"]["source"] == alice.id and offer["data"]["sdp"] == "v=0 a"
    await bob.send({"type": "accept", "data": {"type": "answer", "sdp": "v=0 b", "target": alice.id}})
    accept = await frame(alice, of_type("accept"))
    assert accept["data"]["source"] == bob.id
    call = await frame(alice, of_type("call"))  # the call was recorded on Bob's instance
    assert call["data"]["members"] == [alice.id, bob.id]
    await frame(bob, of_type("call"))
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
    await bob.send({"type": "icecandidate", "data": {"target": alice.id, "candidate": candidate}})
    ice = await frame(alice, of_type("icecandidate"))
    assert ice["data"]["id"] == bob.id and ice["data"]["candidate"] == candidate
    await eventually(lambda: (r := a_server.hub.room(call["data"]["id"])) and r.ids == [alice.id, bob.id], 5)

    # Unknown peers are still refused at once, on either instance.
    await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "x", "target": "nobody"}})
    assert (await frame(alice, of_type("error")))["data"]["code"] == "unknown-peer"


async def test_leave_and_grace_expiry_reach_the_other_instance(
    pair: list[LiveServer], http: aiohttp.ClientSession
) -> None:
    a_server, b_server = pair
    alice = await join(http, a_server, "Alice", b_server)
    bob = await join(http, b_server, "Bob", a_server)
    carol = await join(http, b_server, "Carol", a_server)
    await frame(alice, about(carol.id))

    await bob.send({"type": "leave", "data": {}})
    await frame(alice, about(bob.id, remove=True), within=3)

    began = time.monotonic()
    await carol.ws.close()  # a network drop: Carol stays listed for the grace period
    early = await frames_for(alice, GRACE * 0.5)
    assert not any(about(carol.id, remove=True)(m) for m in early)
    await frame(alice, about(carol.id, remove=True), within=GRACE + 3)
    assert time.monotonic() - began >= GRACE * 0.9
    assert a_server.hub.peer(carol.id) is None and b_server.hub.peer(carol.id) is None


async def test_a_resume_token_from_one_instance_works_on_the_other(
    pair: list[LiveServer], http: aiohttp.ClientSession
) -> None:
    a_server, b_server = pair
    alice = await join(http, a_server, "Alice", b_server)
    bob = await join(http, b_server, "Bob", a_server)
    await frame(alice, about(bob.id))
    await alice.ws.close()
    await eventually(lambda: (p := a_server.hub.peer(alice.id)) is not None and p.conn is None, 3)
    # Bob relays while Alice is away: her old instance holds it and tells Bob she is away.
    await bob.send({"type": "offer", "data": {"type": "offer", "sdp": "held", "target": alice.id}})
    away = await frame(bob, of_type("error"))
    assert away["data"]["code"] == "peer-away"

    again = await RtcClient.connect(http, f"{b_server.ws_url}?resume={alice.token}")
    assert again.id == alice.id
    held = await frame(again, of_type("offer"))  # what her old instance held came along
    assert held["data"]["sdp"] == "held"
    await again.send({"type": "identify", "data": {"id": again.id, "name": "Alice"}})
    await eventually(lambda: (p := a_server.hub.peer(alice.id)) is not None and p.home is not None, 3)
    assert not any(about(alice.id, remove=True)(m) for m in await frames_for(bob, 0.5))
    await bob.send({"type": "offer", "data": {"type": "offer", "sdp": "now", "target": alice.id}})
    assert (await frame(again, of_type("offer")))["data"]["sdp"] == "now"
    # Past her old grace period she is still listed everywhere: nothing expired her.
    await asyncio.sleep(GRACE + 0.5)
    assert a_server.hub.peer(alice.id) is not None and b_server.hub.peer(alice.id) is not None


async def test_group_call_membership_across_instances(
    pair: list[LiveServer], http: aiohttp.ClientSession
) -> None:
    a_server, b_server = pair
    caps = ["group"]
    alice = await join(http, a_server, "Alice", b_server, caps=caps)
    bob = await join(http, b_server, "Bob", a_server, caps=caps)
    carol = await join(http, a_server, "Carol", b_server, caps=caps)
    await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "o", "target": bob.id}})
    await frame(bob, of_type("offer"))
    await bob.send({"type": "accept", "data": {"type": "answer", "sdp": "a", "target": alice.id}})
    call_id = (await frame(bob, of_type("call")))["data"]["id"]
    await eventually(lambda: a_server.hub.room(call_id) is not None, 3)

    await bob.send({"type": "invite", "data": {"target": carol.id, "call": call_id}})  # B invites A's Carol
    invite = await frame(carol, of_type("invite"))
    assert invite["data"]["source"] == bob.id and invite["data"]["members"] == [alice.id, bob.id]
    await eventually(lambda: carol.id in a_server.hub.room(call_id).invited, 3)  # type: ignore[union-attr]
    await carol.send({"type": "join", "data": {"call": call_id}})
    for client in (alice, bob, carol):
        update = await frame(client, lambda m: m["type"] == "call" and len(m["data"]["members"]) == 3)
        assert update["data"]["members"] == [alice.id, bob.id, carol.id]
    # A relay scoped to the call passes between members on different instances.
    await carol.send(
        {"type": "offer", "data": {"type": "offer", "sdp": "c", "target": bob.id, "call": call_id}}
    )
    assert (await frame(bob, of_type("offer")))["data"]["call"] == call_id

    await bob.send({"type": "leave-call", "data": {"call": call_id}})
    update = await frame(alice, lambda m: m["type"] == "call" and len(m["data"]["members"]) == 2)
    assert update["data"]["members"] == [alice.id, carol.id]
    await eventually(lambda: b_server.hub.room(call_id).ids == [alice.id, carol.id], 3)  # type: ignore[union-attr]
    peer_bob = b_server.hub.peer(bob.id)
    assert peer_bob is not None and peer_bob.call is None


async def test_after_a_redis_restart_there_are_no_ghosts(
    pair: list[LiveServer], redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    a_server, b_server = pair
    alice = await join(http, a_server, "Alice", b_server)
    bob = await join(http, b_server, "Bob", a_server)
    carol = await join(http, b_server, "Carol", a_server)
    await frame(alice, about(carol.id))

    redis_server.stop()  # without persistence: everything in Redis is lost
    await carol.send({"type": "leave", "data": {}})  # Carol leaves during the outage
    await asyncio.sleep(0.5)
    redis_server.start()

    seen = await frames_for(alice, 6.0)  # reconnect, re-publish, reconcile
    assert any(about(carol.id, remove=True)(m) for m in seen)
    assert not any(about(bob.id, remove=True)(m) for m in seen)
    for hub in (a_server.hub, b_server.hub):
        assert sorted(p.name or "" for p in hub.listed()) == ["Alice", "Bob"]
    # Relays cross again, both ways.
    await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "after", "target": bob.id}})
    assert (await frame(bob, of_type("offer")))["data"]["sdp"] == "after"
    await bob.send({"type": "reject", "data": {"target": alice.id, "reason": "busy"}})
    assert (await frame(alice, of_type("reject")))["data"]["source"] == bob.id
    # And a newcomer after the restart sees exactly who is there.
    dave = await join(http, a_server, "Dave")
    listed = {m["data"]["name"] for m in await frames_for(dave, 0.5) if m["type"] == "peer"}
    assert listed == {"Alice", "Bob"}
    assert a_server.app is not None and a_server.app[CLUSTER].dropped_frames == 0


async def test_a_relay_stuck_in_a_redis_outage_is_dropped_and_its_sender_told(
    pair: list[LiveServer], redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    """Issue 18 finding 32: frames for another instance queued while Redis is down used to
    be delivered up to 15 s late, or dropped with nobody told. Past FRAME_MAX_AGE they are
    dropped and the sender hears `undelivered` (while Redis is still down), and the
    target never gets them."""
    a_server, b_server = pair
    alice = await join(http, a_server, "Alice", b_server)
    bob = await join(http, b_server, "Bob", a_server)
    redis_server.stop()
    await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "stuck", "target": bob.id}})
    told = await frame(alice, lambda m: m["type"] == "error" and m["data"]["code"] == "undelivered", 20)
    assert told["data"]["ref"] == "offer" and told["data"]["target"] == bob.id
    redis_server.start()
    await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "after", "target": bob.id}})
    first = await frame(bob, of_type("offer"), 20)  # the stuck offer would have come first
    assert first["data"]["sdp"] == "after"
    assert a_server.app is not None and a_server.app[CLUSTER].dropped_frames == 1


@dataclass
class AfterKill:
    """Alice's instance was killed (`kill -9`); Bob's lives on."""

    session: aiohttp.ClientSession
    alice: RtcClient
    bob: RtcClient
    survivor: str  # its /rtc URL
    killed_at: float  # time.monotonic()
    start: Callable[[], Awaitable[str]]  # another instance on the same Redis: its /rtc URL


@contextlib.asynccontextmanager
async def alice_instance_killed(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[AfterKill]:
    """Two `python -m server` processes on one Redis (grace 6 s), Alice on the first and
    Bob on the second, each listing the other; then the first is killed."""
    common = {"REDIS_URL": redis_server.url, "RESUME_GRACE": "6"}
    procs: list[Any] = []

    async def start() -> str:
        port = free_port()
        log = tmp_path / f"s{len(procs)}.log"
        procs.append(await asyncio.to_thread(start_process, port, tmp_path / "certs", log, **common))
        return f"wss://localhost:{port}/rtc"

    try:
        urls = [await start(), await start()]
        context = ssl.create_default_context(cafile=str(tmp_path / "certs" / "ca.pem"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            alice = await RtcClient.connect(session, urls[0], "Alice")
            bob = await RtcClient.connect(session, urls[1], "Bob")
            await frame(alice, about(bob.id))
            procs[0].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            procs[0].wait(5)
            yield AfterKill(session, alice, bob, urls[1], killed_at, start)
    finally:
        for proc in procs:
            stop_process(proc)


async def test_kill_9_of_an_instance_its_clients_resume_on_the_other(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with alice_instance_killed(redis_server, tmp_path) as after:
        alice, bob = after.alice, after.bob
        with pytest.raises((TimeoutError, AssertionError)):
            await alice.recv(1.0)  # the socket died with its server
        again = await RtcClient.connect(after.session, f"{after.survivor}?resume={alice.token}")
        assert again.id == alice.id
        await again.send({"type": "identify", "data": {"id": again.id, "name": "Alice"}})
        seen = await frames_for(bob, 7.0)  # beyond the grace period: nobody saw her leave
        assert not any(about(alice.id, remove=True)(m) for m in seen)
        await bob.send({"type": "offer", "data": {"type": "offer", "sdp": "s", "target": alice.id}})
        assert (await frame(again, of_type("offer")))["data"]["source"] == bob.id


async def test_an_instance_started_after_a_kill_9_lets_its_clients_resume(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A worker restarted after a kill -9 comes up when the dead instance's heartbeat has
    expired: a tab reconnecting to it (not to the survivor) must still get its id back
    within the grace period (a browser failover test once saw "Alice came back under a
    new id")."""
    redis = aioredis.from_url(redis_server.url)
    try:
        async with alice_instance_killed(redis_server, tmp_path) as after:
            alice, bob = after.alice, after.bob

            async def one_alive() -> bool:
                return len([key async for key in redis.scan_iter(match="lancall:alive:*")]) == 1

            await eventually(one_alive, 10, what="the killed instance's heartbeat expired")
            fresh = await after.start()
            again = await RtcClient.connect(after.session, f"{fresh}?resume={alice.token}")
            assert again.id == alice.id, "Alice came back under a new id"
            await again.send({"type": "identify", "data": {"id": again.id, "name": "Alice"}})
            await again.send({"type": "offer", "data": {"type": "offer", "sdp": "s", "target": bob.id}})
            assert (await frame(bob, of_type("offer")))["data"]["source"] == alice.id
            # Past the grace period after the kill, nobody saw her leave.
            seen = await frames_for(bob, after.killed_at + 7.0 - time.monotonic())
            assert not any(about(alice.id, remove=True)(m) for m in seen)
    finally:
        await redis.aclose()


def test_redis_unreachable_at_start_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    env = server_env(
        PORT=str(free_port()),
        HOST="127.0.0.1",
        CERTS_DIR=str(tmp_path / "certs"),
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    result = run_to_exit(env)
    assert result.returncode == 2
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: REDIS_URL=redis://127.0.0.1:") and "unreachable" in lines[0]


async def test_an_instance_that_stops_during_a_redis_outage_leaves_no_ghosts(
    pair: list[LiveServer], redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    a_server, b_server = pair
    alice = await join(http, a_server, "Alice", b_server)
    bob = await join(http, b_server, "Bob", a_server)
    await frame(alice, about(bob.id))
    redis_server.stop()
    await b_server.stop()  # its goodbye cannot reach Redis: only the reconciliation can tell
    redis_server.start()
    await frame(alice, about(bob.id, remove=True), within=GRACE + 8)
    assert [p.name for p in a_server.hub.listed()] == ["Alice"]


async def test_spaces_hold_across_instances(pair: list[LiveServer], http: aiohttp.ClientSession) -> None:
    a_server, b_server = pair
    ann = await join(http, a_server, "Ann", b_server, space="K7M2QX")
    olga = await join(http, b_server, "Olga", a_server)
    bob = await join(http, b_server, "Bob", a_server, space="k7m2qx")
    await frame(bob, about(ann.id, name="Ann"))  # in Bob's list, held by the other instance
    await frame(ann, about(bob.id, name="Bob"))
    assert not [m for m in await frames_for(olga, 0.5) if m["type"] == "peer"]  # the open network
    await olga.send({"type": "offer", "data": {"type": "offer", "sdp": "v=0 o", "target": ann.id}})
    await frame(olga, of_type("error", code="unknown-peer", target=ann.id))
    # Ann moves to the open network: her space hears her leave, the open network her join.
    await ann.send({"type": "identify", "data": {"id": ann.id, "name": "Ann"}})
    await frame(bob, about(ann.id, remove=True))
    await frame(olga, about(ann.id, name="Ann"))


async def test_invites_and_joins_on_both_instances_at_once_never_pass_the_limit(
    start_server: StartServer, redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    """Issue 18, finding 26 (8 of 10 rounds disagreed, up to 9 told they joined a call of
    6): every round, both instances invite and then join at once; the call's owner
    decides, so both agree and the call never passes MAX_CALL_SIZE."""
    a_server, b_server = [
        await start_server(redis_url=redis_server.url, resume_grace=GRACE, max_call_size=4) for _ in range(2)
    ]
    caps = ["group"]
    alice = await join(http, a_server, "Alice", b_server, caps=caps)
    bob = await join(http, b_server, "Bob", a_server, caps=caps)
    guests = [
        await join(http, server, name, other, caps=caps)
        for server, other, name in (
            (a_server, b_server, "Carol"),
            (a_server, b_server, "Dave"),
            (b_server, a_server, "Erin"),
            (b_server, a_server, "Frank"),
        )
    ]
    for _ in range(3):
        await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "o", "target": bob.id}})
        await frame(bob, of_type("offer"))
        await bob.send({"type": "accept", "data": {"type": "answer", "sdp": "a", "target": alice.id}})
        call_id = (await frame(alice, of_type("call")))["data"]["id"]
        await eventually(lambda c=call_id: a_server.hub.room(c) is not None, 3)
        # Alice (on A) invites A's two, Bob (on B) invites B's two: two places for four.
        await asyncio.gather(
            *(alice.send({"type": "invite", "data": {"target": g.id, "call": call_id}}) for g in guests[:2]),
            *(bob.send({"type": "invite", "data": {"target": g.id, "call": call_id}}) for g in guests[2:]),
        )

        def invitations(c: str = call_id) -> list[list[str]]:
            rooms = [s.hub.room(c) for s in (a_server, b_server)]
            return [sorted(r.invited) if r is not None else [] for r in rooms]

        await eventually(lambda: [len(i) for i in invitations()] == [2, 2], 5, what="two invitations")
        await eventually(lambda: invitations()[0] == invitations()[1], 5, what="the same two on both")
        invited = [g for g in guests if g.id in invitations()[0]]
        for guest in invited:
            await frame(guest, of_type("invite", call=call_id))
        # Everyone tries to join at once, invited or not.
        await asyncio.gather(*(g.send({"type": "join", "data": {"call": call_id}}) for g in guests))

        def settled(c: str = call_id) -> bool:
            rooms = [s.hub.room(c) for s in (a_server, b_server)]
            return all(r is not None and len(r.members) == 4 for r in rooms) and rooms[0].ids == rooms[1].ids  # type: ignore[union-attr]

        await eventually(settled, 5, what="both instances agree on a call of four")
        room = a_server.hub.room(call_id)
        assert room is not None and set(room.ids) == {alice.id, bob.id, *(g.id for g in invited)}
        # Everyone leaves; the next round starts from a fresh call.
        for client in (alice, bob, *invited):
            await client.send({"type": "leave-call", "data": {"call": call_id}})
        await eventually(lambda c=call_id: a_server.hub.room(c) is None and b_server.hub.room(c) is None, 5)
        for client in (alice, bob, *guests):
            await frames_for(client, 0.2)  # what the round left unread
