"""Redis that needs a password, and Redis over TLS (issue 18, finding 27: anyone who
reaches an open Redis reads every peer record and can publish frames). REDIS_URL takes
both as redis-py spells them: `redis://:PASSWORD@host:port/0`, and
`rediss://host:port/0?ssl_ca_certs=/path/ca.pem` (verified against that CA)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from server.cluster import check_reachable, exposure_warning
from server.config import SettingsError
from tests.integration.test_redis import frame, join, of_type
from tests.support.liveserver import StartServer
from tests.support.redisserver import RedisServer


@pytest.mark.parametrize("tls", [False, True], ids=["password", "tls-and-password"])
async def test_two_instances_share_a_network_through_a_redis_that_needs_a_password(
    start_server: StartServer, http: aiohttp.ClientSession, tmp_path: Path, tls: bool
) -> None:
    redis = RedisServer(tmp_path, password="s3cret-pass", tls=tls)
    redis.start()
    try:
        a_server, b_server = [await start_server(redis_url=redis.url) for _ in range(2)]
        alice = await join(http, a_server, "Alice", b_server)
        bob = await join(http, b_server, "Bob", a_server)
        await alice.send({"type": "offer", "data": {"type": "offer", "sdp": "over auth", "target": bob.id}})
        assert (await frame(bob, of_type("offer")))["data"]["sdp"] == "over auth"
    finally:
        redis.stop()


async def test_a_wrong_password_or_no_tls_is_one_line_without_the_password(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path, password="right-one", tls=True)
    redis.start()
    try:
        wrong = redis.url.replace(":right-one@", ":wrong-one@")
        with pytest.raises(SettingsError) as caught:
            await check_reachable(wrong)
        message = str(caught.value)
        assert "wrong-one" not in message and "***" in message and "\n" not in message
        plain = f"redis://127.0.0.1:{redis.port}/0"  # TLS only: a plain client gets nowhere
        with pytest.raises(SettingsError):
            await check_reachable(plain)
        await check_reachable(redis.url)  # the right one answers
    finally:
        redis.stop()


def test_a_redis_elsewhere_without_a_password_is_warned_about() -> None:
    assert exposure_warning("redis://127.0.0.1:6379/0") is None  # this machine
    assert exposure_warning("redis://localhost:6379/0") is None
    # Names only: nothing here connects anywhere.
    assert exposure_warning("redis://:secret@redis.example.net:6379/0") is None  # a password
    warning = exposure_warning("redis://redis.example.net:6379/0") or ""
    assert "redis.example.net" in warning and "requirepass" in warning and "rediss://" in warning
    assert "rediss://" not in (exposure_warning("rediss://redis.example.net:6380/0") or "")


async def test_a_frame_published_without_the_cluster_key_is_not_delivered_and_no_code_rests_in_redis(
    start_server: StartServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The attack of finding 27: with access to Redis, one PUBLISH on an instance's channel
    delivered an offer "from Bob", and HGETALL read every space code. Instances sign what
    they send (CLUSTER_SECRET) and keep codes as keyed tags."""
    import redis.asyncio as aioredis

    from server import replica
    from server.cluster import CLUSTER, PRESENCE, inbox, peers_key

    redis = RedisServer(tmp_path)
    redis.start()
    client = aioredis.Redis.from_url(redis.url)
    try:
        a_server, b_server = [await start_server(redis_url=redis.url) for _ in range(2)]
        alice = await join(http, a_server, "Alice", b_server, space="GARDEN42")
        bob = await join(http, b_server, "Bob", a_server, space="GARDEN42")
        assert a_server.app is not None and b_server.app is not None
        cluster_a, cluster_b = a_server.app[CLUSTER], b_server.app[CLUSTER]

        # Nothing in Redis spells the code; the instances still see the two in one space.
        records = [await client.hgetall(k) for k in (peers_key(cluster_a.me), peers_key(cluster_b.me))]
        stored = b"".join(v for record in records for v in record.values())
        assert b"GARDEN42" not in stored.upper() and bob.id.encode() in stored
        await frame(alice, lambda m: m["type"] == "peer" and m["data"]["id"] == bob.id)

        # A forged offer "from Bob" on A's channel, unsigned, then signed with another key.
        offer = json_text({"type": "offer", "data": {"type": "offer", "sdp": "forged", "source": bob.id}})
        await client.publish(inbox(cluster_a.me), replica.frame_message(alice.id, offer))
        wrong = replica.sign(
            b"not-the-cluster-key", inbox(cluster_a.me), replica.frame_message(alice.id, offer)
        )
        await client.publish(inbox(cluster_a.me), wrong)
        forged_up = replica.sign(
            b"not-the-cluster-key", PRESENCE, '{"t":"down","home":"' + cluster_b.me + '"}'
        )
        await client.publish(PRESENCE, forged_up)
        # A real one, signed by B, arrives after them on the same channel: nothing came before it.
        await bob.send({"type": "offer", "data": {"type": "offer", "sdp": "real", "target": alice.id}})
        assert (await frame(alice, of_type("offer")))["data"]["sdp"] == "real"
        assert cluster_a.bad_signatures == 3
        assert a_server.hub.peer(bob.id) is not None  # the forged "down" did nothing
    finally:
        await client.aclose()
        redis.stop()


def json_text(message: dict[str, object]) -> str:
    return json.dumps(message)
