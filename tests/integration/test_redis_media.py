"""A running call survives `kill -9` of one instance (issue 14, item 2): two `python -m
server` processes on one real redis-server, two aiortc peers (lancall_peer/peer.py) with
real media over the LAN interface, each signalling through its own instance.

The media flows between the peers, never through the server, so killing Ann's instance
must change nothing in the call: her peer resumes its id on the other instance with its
token, neither side ends the call, and Bob never hears that she left.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

from lancall_peer.peer import Call, PythonPeer
from tests.support.benchproc import start_server as start_process
from tests.support.benchproc import stop_server as stop_process
from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.redisserver import RedisServer

GRACE = 4.0  # RESUME_GRACE of both instances: Bob is watched past it
WATCH = 3.0  # seconds of media checked after the kill, one window a second
WAIT = 20.0
SMALL_VIDEO: dict[str, Any] = {"video_size": (160, 120), "video_fps": 15.0}


async def received(call: Call) -> tuple[int, int]:
    """Bytes on the call's transport and RTP packets of its inbound streams, so far."""
    stats = (await call.pc.getStats()).values()
    transport = sum(s.bytesReceived for s in stats if getattr(s, "type", None) == "transport")
    packets = sum(s.packetsReceived for s in stats if getattr(s, "type", None) == "inbound-rtp")
    return transport, packets


async def instance(redis: RedisServer, tmp_path: Path, port: int, **settings: str) -> subprocess.Popen[bytes]:
    """A `python -m server` process on `port` sharing `redis` (and one CA with the others)."""
    log = tmp_path / f"server-{port}.log"
    env = {"REDIS_URL": redis.url, **settings}
    return await asyncio.to_thread(lambda: start_process(port, tmp_path / "certs", log, **env))


def removals_of(peer: PythonPeer, peer_id: str, since: int) -> list[dict[str, object]]:
    return [
        m
        for m in peer.messages[since:]
        if m.get("type") == "peer" and m["data"].get("id") == peer_id and m["data"].get("remove")
    ]


async def test_media_keeps_flowing_when_the_callers_instance_is_killed(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    procs = [await instance(redis_server, tmp_path, port, RESUME_GRACE=str(GRACE)) for port in ports]
    urls = [f"https://localhost:{port}/" for port in ports]
    context = ssl.create_default_context(cafile=str(tmp_path / "certs" / "ca.pem"))
    try:
        ann = PythonPeer(urls, "Ann", ssl_context=context, wait_timeout=WAIT, audio=True, **SMALL_VIDEO)
        bob = PythonPeer(urls[1], "Bob", ssl_context=context, wait_timeout=WAIT, audio=True, **SMALL_VIDEO)
        async with ann, bob:
            assert ann.url.endswith(f":{ports[0]}/rtc") and bob.url.endswith(f":{ports[1]}/rtc")
            ann_call = await ann.call(await ann.wait_for_peer("Bob"))
            bob_call = await bob.wait_for_call(ann.id)
            await asyncio.gather(ann_call.wait_for_video_frames(10), bob_call.wait_for_video_frames(10))
            ann_id, bob_seen_from = ann.id, len(bob.messages)

            procs[0].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await asyncio.to_thread(procs[0].wait, 5)

            # Media on both sides, each second for WATCH seconds: more bytes, more packets.
            samples = [(await received(ann_call), await received(bob_call), ann_call.video_frames)]
            for second in range(1, int(WATCH) + 1):
                await asyncio.sleep(killed_at + second - time.monotonic())
                samples.append((await received(ann_call), await received(bob_call), ann_call.video_frames))
            for (a0, b0, f0), (a1, b1, f1) in itertools.pairwise(samples):
                assert a1[0] > a0[0] and a1[1] > a0[1], ("Ann's media stalled", samples)
                assert b1[0] > b0[0] and b1[1] > b0[1], ("Bob's media stalled", samples)
                assert f1 > f0, ("Ann decodes no new video", samples)

            # Ann's signalling is back on the other instance, under her id.
            await eventually(lambda: ann.reconnects == 1, WAIT, what="Ann reconnected")
            assert ann.id == ann_id and ann.url.endswith(f":{ports[1]}/rtc")
            # And it works there: a renegotiation goes Ann -> instance 2 -> Bob and back.
            since = len(ann.messages)
            await ann_call.renegotiate()
            await asyncio.wait_for(asyncio.shield(ann_call.accepted), WAIT)
            assert [m["type"] for m in ann.messages[since:] if m["type"] in ("accept", "reject")] == [
                "accept"
            ]

            # Past the grace period Bob has still never heard that Ann left.
            await asyncio.sleep(max(0.0, killed_at + GRACE + 1.0 - time.monotonic()))
            assert removals_of(bob, ann_id or "", bob_seen_from) == []
            assert ann_id in bob.peers and "Bob" in {p.name for p in ann.peers.values()}
            for call in (ann_call, bob_call):
                assert not call.ended.is_set(), call.end_reason
                assert call.pc.connectionState == "connected"
            frames = bob_call.video_frames
            await bob_call.wait_for_video_frames(frames + 10)
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop_process(proc)


async def test_without_reconnecting_a_drop_ends_the_peers_calls(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """The opposite switch (`--no-reconnect`): the socket drops, the calls end at once."""
    port = free_port()
    proc = await instance(redis_server, tmp_path, port)
    context = ssl.create_default_context(cafile=str(tmp_path / "certs" / "ca.pem"))
    try:
        url = f"https://localhost:{port}/"
        ann = PythonPeer(url, "Ann", ssl_context=context, reconnect=False, **SMALL_VIDEO)
        bob = PythonPeer(url, "Bob", ssl_context=context, **SMALL_VIDEO)
        async with ann, bob:
            ann_call = await ann.call(await ann.wait_for_peer("Bob"))
            await ann_call.wait_for_video_frames(3)
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(ann_call.ended.wait(), WAIT)
            assert ann_call.end_reason == "server-gone" and ann.reconnects == 0
    finally:
        stop_process(proc)
