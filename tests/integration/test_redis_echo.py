"""The "Echo test" bot with several instances on one Redis (ECHO on each): every instance
runs its own echo, and its media is served by that process, so each client lists exactly
one "Echo test", the one of the instance it is connected to; and an echo stays out of a
group call with members it could not reach (docs/architecture.md, "Several instances")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from server.echo import ECHO, ECHO_NAME
from tests.integration import test_redis
from tests.integration.test_redis import GRACE, frame, frames_for, join, of_type
from tests.support.liveserver import LiveServer, StartServer
from tests.support.polling import eventually
from tests.support.redisserver import RedisServer


@pytest.fixture
async def echoes(start_server: StartServer, redis_server: RedisServer) -> AsyncIterator[list[LiveServer]]:
    yield [
        await start_server(redis_url=redis_server.url, resume_grace=GRACE, echo=True, echo_max_calls=4)
        for _ in range(2)
    ]


def echo_id(live: LiveServer) -> str:
    assert live.app is not None and live.app[ECHO].id is not None
    return live.app[ECHO].id


async def test_each_client_lists_the_echo_of_its_own_instance_only(
    echoes: list[LiveServer], http: aiohttp.ClientSession
) -> None:
    a_server, b_server = echoes
    ann = await join(http, a_server, "Ann", b_server)
    bob = await join(http, b_server, "Bob", a_server)
    for client, home in ((ann, a_server), (bob, b_server)):
        listed = [m["data"] for m in await frames_for(client, 0.5) if m["type"] == "peer"]
        echoes_listed = [p["id"] for p in listed if p["name"] == ECHO_NAME]
        assert echoes_listed == [echo_id(home)], listed
    assert echo_id(a_server) != echo_id(b_server)
    assert a_server.hub.peer(echo_id(b_server)) is None and b_server.hub.peer(echo_id(a_server)) is None
    # Calling the other instance's echo is calling nobody.
    await bob.send({"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": echo_id(a_server)}})
    await frame(bob, of_type("error", code="unknown-peer"))


async def test_an_echo_stays_out_of_a_group_call_with_members_on_another_instance(
    echoes: list[LiveServer], http: aiohttp.ClientSession
) -> None:
    a_server, b_server = echoes
    echo_a = echo_id(a_server)
    caps = ["group"]
    ann = await join(http, a_server, "Ann", b_server, caps=caps)
    cat = await join(http, a_server, "Cat", b_server, caps=caps)
    bob = await join(http, b_server, "Bob", a_server, caps=caps)

    async def call(caller: test_redis.RtcClient, callee: test_redis.RtcClient) -> str:
        await caller.send({"type": "offer", "data": {"type": "offer", "sdp": "o", "target": callee.id}})
        await frame(callee, of_type("offer"))
        await callee.send({"type": "accept", "data": {"type": "answer", "sdp": "a", "target": caller.id}})
        update = await frame(caller, lambda m: m["type"] == "call" and callee.id in m["data"]["members"])
        call_id: str = update["data"]["id"]
        return call_id

    # Ann (here) and Bob (the other instance): the echo declines, the call stays as it was.
    with_bob = await call(ann, bob)
    await eventually(lambda: a_server.hub.room(with_bob) is not None, 3)
    await ann.send({"type": "invite", "data": {"target": echo_a, "call": with_bob}})
    declined = await frame(ann, of_type("reject", source=echo_a))
    assert declined["data"]["reason"] == "declined" and declined["data"]["call"] == with_bob
    assert a_server.hub.room(with_bob).ids == [ann.id, bob.id]  # type: ignore[union-attr]
    await ann.send({"type": "leave-call", "data": {"call": with_bob}})
    await eventually(lambda: a_server.hub.room(with_bob) is None, 3)

    # Ann and Cat, both here: the echo joins; once Bob joins from the other instance it leaves.
    here = await call(ann, cat)
    await ann.send({"type": "invite", "data": {"target": echo_a, "call": here}})
    await frame(ann, lambda m: m["type"] == "call" and echo_a in m["data"]["members"])
    await ann.send({"type": "invite", "data": {"target": bob.id, "call": here}})
    await frame(bob, of_type("invite"))
    await bob.send({"type": "join", "data": {"call": here}})
    update = await frame(ann, lambda m: m["type"] == "call" and echo_a not in m["data"]["members"])
    assert update["data"]["members"] == [ann.id, cat.id, bob.id]
    await eventually(lambda: a_server.app is not None and here not in a_server.app[ECHO].groups, 3)
