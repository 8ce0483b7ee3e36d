"""An instance busy with a burst from Redis still lets its other tasks run: the reader
yields to the event loop after every message. Before, a burst of buffered events (many
joins on another instance) was applied in one uninterrupted step, the heartbeat starved
past ALIVE_TTL_MS, and the other instances took this one for dead and dropped its people
(bench/cluster.py --idle 4000 showed `event=instance-lost` on both instances)."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from server import replica
from server.cluster import CLUSTER, PRESENCE, alive_key
from tests.support.liveserver import StartServer
from tests.support.polling import eventually
from tests.support.redisserver import RedisServer

BURST = 600  # up events published in one pipeline, so most arrive already buffered


def up_event(i: int) -> str:
    peer = {"id": f"remote-{i}", "name": f"Remote {i}", "kind": "browser", "token_hash": "h", "caps": []}
    return json.dumps({"t": "up", "home": "elsewhere", "peer": {**peer, "call": None, "space": None}})


def longest_run(values: list[int]) -> int:
    longest = run = 0
    for i, value in enumerate(values):
        run = run + 1 if i and value == values[i - 1] else 1
        longest = max(longest, run)
    return longest


async def test_a_burst_of_remote_events_does_not_hold_the_event_loop(
    redis_server: RedisServer, start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = await start_server(redis_url=redis_server.url)
    assert live.app is not None
    cluster = live.app[CLUSTER]
    turns = 0  # how many times the event loop has run the ticker
    handled_at: list[int] = []  # `turns` when each event was applied
    handle = cluster._handle

    def counted(channel: bytes, data: bytes) -> None:
        handled_at.append(turns)
        handle(channel, data)

    async def tick() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    monkeypatch.setattr(cluster, "_handle", counted)
    publisher = aioredis.Redis.from_url(redis_server.url)
    ticker = asyncio.create_task(tick())
    try:
        await publisher.set(alive_key("elsewhere"), "1", px=60_000)  # alive throughout
        pipe = publisher.pipeline(transaction=False)
        for i in range(BURST):
            pipe.publish(PRESENCE, replica.sign(cluster.secret, PRESENCE, up_event(i)))
        await pipe.execute()
        await eventually(
            lambda: len(live.hub.mirrors.peers()) == BURST, 10, what="every remote peer mirrored"
        )
    finally:
        ticker.cancel()
        await publisher.aclose()
    # Other tasks (the heartbeat among them) ran between any two events applied.
    assert longest_run(handled_at) <= 2, f"{longest_run(handled_at)} events applied in one step"
