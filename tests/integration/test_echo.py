"""The "Echo test" peer (server/echo.py) and the Python peer (lancall_peer/peer.py), end to end:
a real HTTPS server, real TLS WebSockets, real aiortc media over the LAN interface.

aiortc never uses loopback addresses, so media flows over this machine's LAN address;
every aiortc object lives in the one session-scoped event loop (aioice's mDNS code
binds to the first loop it sees).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.sdp import candidate_to_sdp

from lancall_peer.peer import Call, CallRejected, PythonPeer, rtc_url
from server.echo import ECHO, ECHO_NAME, ECHO_PREFIX, EchoPeer
from server.webrtc import MAX_REMOTE_CANDIDATES, RemoteCandidates, parse_candidate
from tests.support import polling
from tests.support.liveserver import LiveServer, StartServer


def echo_of(live: LiveServer) -> EchoPeer:
    assert live.app is not None
    return live.app[ECHO]


async def eventually(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll `predicate` (state with no event to wait on, such as a socket count)."""
    async with asyncio.timeout(seconds):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)


async def assert_all_media_torn_down() -> None:
    """Every peer connection still in memory is closed down to its ICE sockets, and
    no echo call task is left running."""
    await asyncio.sleep(0.1)
    gc.collect()
    pcs = [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection)]
    assert all(pc.connectionState == "closed" and pc.iceConnectionState == "closed" for pc in pcs)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("echo-call-")]


def udp_sockets() -> int:
    """UDP sockets this process holds open (ICE uses one or more per peer connection)."""
    inodes: set[str] = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        with contextlib.suppress(OSError):
            inodes |= {line.split()[9] for line in Path(table).read_text().splitlines()[1:]}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            count += link.startswith("socket:[") and link[8:-1] in inodes
    return count


@asynccontextmanager
async def joined(
    live: LiveServer, client_ssl: ssl.SSLContext, name: str, **kw: Any
) -> AsyncIterator[PythonPeer]:
    async with PythonPeer(live.url, name, ssl_context=client_ssl, **kw) as peer:
        yield peer


async def test_echo_is_listed_as_a_bot(start_server: StartServer, client_ssl: ssl.SSLContext) -> None:
    live = await start_server(echo=True)
    async with joined(live, client_ssl, "Ann") as ann:
        echo_id = await ann.wait_for_peer(ECHO_NAME)
        assert echo_id == echo_of(live).id
        assert ann.peers[echo_id].kind == "bot"
        listing = await ann.wait_for_message("peer", lambda m: m["data"]["id"] == echo_id)
        assert listing["data"] == {"id": echo_id, "name": ECHO_NAME, "kind": "bot"}


async def test_echo_off_means_not_listed(start_server: StartServer, client_ssl: ssl.SSLContext) -> None:
    live = await start_server(echo=False)
    async with joined(live, client_ssl, "Ann") as ann, joined(live, client_ssl, "Bob"):
        await ann.wait_for_peer("Bob")
        assert [p.name for p in ann.peers.values()] == ["Bob"]
    assert live.app is not None and ECHO not in live.app


async def test_python_peer_calls_echo_sees_itself_and_chat_is_echoed(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server(echo=True)
    echo = echo_of(live)
    async with joined(live, client_ssl, "Ann", audio=True) as ann:
        call = await ann.call(await ann.wait_for_peer(ECHO_NAME))
        assert echo.active_calls == 1
        # Our own synthetic video and tone, sent back through the relay.
        assert await call.wait_for_video_frames(15) >= 15
        assert await call.wait_for_audio_frames(25) >= 25
        await call.send_chat("hello, me")
        assert await call.wait_for_chat(0) == f"{ECHO_PREFIX}hello, me"
        await call.send_data({"type": "typing", "data": True})  # ignored, not echoed
        await call.send_chat("second")
        assert await call.wait_for_chat(1) == f"{ECHO_PREFIX}second"
        assert call.chat == [f"{ECHO_PREFIX}hello, me", f"{ECHO_PREFIX}second"]
        await call.hangup()
        await eventually(lambda: echo.active_calls == 0)
        assert echo.calls_total == 1


async def test_python_peer_calls_python_peer(start_server: StartServer, client_ssl: ssl.SSLContext) -> None:
    live = await start_server()
    async with joined(live, client_ssl, "Ann") as ann, joined(live, client_ssl, "Bob") as bob:
        outgoing = await ann.call(await ann.wait_for_peer("Bob"))
        incoming = await bob.wait_for_call(ann.id)
        await outgoing.wait_for_video_frames(10)
        await incoming.wait_for_video_frames(10)
        await outgoing.send_chat("hi Bob")
        assert await incoming.wait_for_chat(0) == "hi Bob"
        await incoming.send_chat("hi Ann")
        assert await outgoing.wait_for_chat(0) == "hi Ann"
        # A third peer calling Bob mid-call is told he is busy.
        async with joined(live, client_ssl, "Cat") as cat:
            with pytest.raises(CallRejected) as rejected:
                await cat.call(await cat.wait_for_peer("Bob"))
            assert rejected.value.reason == "busy"
        await outgoing.hangup()
        await asyncio.wait_for(incoming.ended.wait(), 5)
        assert incoming.end_reason is not None
        assert not bob.calls and not ann.calls


@pytest.mark.parametrize("polite_dials_first", [True, False], ids=["polite-first", "impolite-first"])
async def test_python_peers_calling_each_other_at_once_end_in_one_call(
    start_server: StartServer, client_ssl: ssl.SSLContext, polite_dials_first: bool
) -> None:
    """Glare (docs/protocol.md §7): both dial at the same moment. The impolite side (the
    larger id) ignores the offer it gets; the polite side ends its own attempt ("glare")
    and answers the other's, so each `call()` returns the one call between them."""
    live = await start_server()
    async with joined(live, client_ssl, "Ann") as ann, joined(live, client_ssl, "Bob") as bob:
        await ann.wait_for_peer("Bob")
        await bob.wait_for_peer("Ann")
        # The rule, spelled out here rather than taken from `is_polite`: the smaller id yields.
        polite, impolite = sorted((ann, bob), key=lambda peer: peer.id or "")
        assert polite.id is not None and impolite.id is not None and polite.id < impolite.id
        seen = [len(ann.messages), len(bob.messages)]

        if polite_dials_first:
            polite_call, impolite_call = await asyncio.gather(
                polite.call(impolite.id), impolite.call(polite.id)
            )
        else:
            impolite_call, polite_call = await asyncio.gather(
                impolite.call(polite.id), polite.call(impolite.id)
            )

        # One call on each side: the impolite side's own, answered by the polite side.
        assert impolite_call.outgoing and not polite_call.outgoing
        assert impolite.calls == {polite.id: impolite_call}
        assert polite.calls == {impolite.id: polite_call}
        assert impolite.ended_calls == []
        [abandoned] = polite.ended_calls  # the polite side's own attempt, ended quietly
        assert abandoned.outgoing and abandoned.remote_id == impolite.id
        assert abandoned.end_reason == "glare"
        assert abandoned is not polite_call and abandoned.pc.connectionState == "closed"
        for peer, count in zip((ann, bob), seen, strict=True):  # nobody was refused or hung up on
            said = [m["type"] for m in peer.messages[count:]]
            assert not {"reject", "hangup", "error"} & set(said), (peer.name, said)

        # The server made one call of the two; both ends connect over one link.
        await asyncio.gather(*(peer.wait_for_members({polite.id, impolite.id}) for peer in (ann, bob)))
        assert ann.call_id is not None and ann.call_id == bob.call_id
        await polling.eventually(
            lambda: polite_call.pc.connectionState == impolite_call.pc.connectionState == "connected",
            within=15,
            what="both sides connected",
        )
        await asyncio.gather(polite_call.wait_for_video_frames(10), impolite_call.wait_for_video_frames(10))
        await polite_call.send_chat("from the polite side")
        assert await impolite_call.wait_for_chat(0) == "from the polite side"
        await impolite_call.send_chat("from the impolite side")
        assert await polite_call.wait_for_chat(0) == "from the impolite side"
        assert await polite_call.wait_for_code() == await impolite_call.wait_for_code()

        await impolite_call.hangup()
        await asyncio.wait_for(polite_call.ended.wait(), 5)
        assert not ann.calls and not bob.calls


async def test_cap_plus_one_caller_is_busy(start_server: StartServer, client_ssl: ssl.SSLContext) -> None:
    live = await start_server(echo=True, echo_max_calls=2)
    echo = echo_of(live)
    async with (
        joined(live, client_ssl, "Ann") as ann,
        joined(live, client_ssl, "Bob") as bob,
        joined(live, client_ssl, "Cat") as cat,
    ):
        echo_id = await ann.wait_for_peer(ECHO_NAME)
        first = await ann.call(echo_id)
        second = await bob.call(echo_id)
        assert echo.active_calls == 2
        with pytest.raises(CallRejected) as rejected:
            await cat.call(echo_id)
        assert rejected.value.reason == "busy"
        assert echo.busy_total == 1
        # The two calls in progress are unaffected.
        await first.wait_for_video_frames(5)
        await second.wait_for_video_frames(5)
        # Once a call ends there is room again.
        await first.hangup()
        await eventually(lambda: echo.active_calls == 1)
        third = await cat.call(echo_id)
        await third.wait_for_video_frames(5)
        assert echo.active_calls == 2


async def test_hangup_datachannel_disconnect_and_leaving_free_the_call(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server(echo=True, resume_grace=0.3)
    echo = echo_of(live)
    before = udp_sockets()

    async def all_closed() -> None:
        """The echo's call is gone and both sides' ICE sockets are closed: at once, as
        `active_calls` counts a call until its peer connection is closed (a connection
        left open would only notice the other side had gone a while later)."""
        await eventually(lambda: echo.active_calls == 0)
        await eventually(lambda: udp_sockets() <= before, 0.25)

    async with joined(live, client_ssl, "Ann") as ann:
        echo_id = await ann.wait_for_peer(ECHO_NAME)

        # 1. `hangup` through the server.
        call = await ann.call(echo_id)
        await call.wait_for_video_frames(3)
        assert udp_sockets() > before
        await call.hangup()
        await all_closed()

        # 2. `disconnect` on the data channel only (what the original client sends).
        call = await ann.call(echo_id)
        await call.wait_for_video_frames(3)
        await call.send_data({"type": "disconnect"})
        await eventually(lambda: echo.active_calls == 0)
        await call.close("done")
        await all_closed()

    # 3. The caller vanishes: no hangup, no disconnect; its grace period runs out.
    caller = PythonPeer(live.url, "Bob", ssl_context=client_ssl)
    await caller.connect()
    call = await caller.call(await caller.wait_for_peer(ECHO_NAME))
    await call.wait_for_video_frames(3)
    assert echo.active_calls == 1
    await caller.drop()
    await all_closed()
    assert echo.calls_total == 3
    await assert_all_media_torn_down()


async def test_malformed_offers_are_rejected_and_the_server_keeps_serving(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server(echo=True, echo_max_calls=1)
    echo = echo_of(live)
    async with joined(live, client_ssl, "Mallory") as mallory, joined(live, client_ssl, "Ann") as ann:
        echo_id = await mallory.wait_for_peer(ECHO_NAME)
        garbage = [
            "this is not SDP",
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",  # a media line, nothing usable
            "v=0\r\n" + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" * 50,  # far too many sections
        ]
        for sdp in garbage:
            since = len(mallory.messages)
            await mallory.send({"type": "offer", "data": {"type": "offer", "sdp": sdp, "target": echo_id}})
            reply = await mallory.wait_for_message("reject", since=since)
            assert reply["data"]["source"] == echo_id
            assert reply["data"]["reason"] == "error"
            await eventually(lambda: echo.active_calls == 0)
        assert echo.failures == len(garbage)
        assert echo.calls_total == 0

        # Everyone else is served: the echo answers a real call (its only slot is
        # free again), and peers still reach each other through the server.
        call = await ann.call(echo_id)
        await call.wait_for_video_frames(5)
        await call.send_chat("still there?")
        assert await call.wait_for_chat(0) == f"{ECHO_PREFIX}still there?"
        since = len(ann.messages)
        await mallory.send({"type": "hangup", "data": {"target": ann.id, "reason": "test"}})
        relayed = await ann.wait_for_message("hangup", since=since)
        assert relayed["data"]["source"] == mallory.id
        assert not mallory.closed and not ann.closed
    await eventually(lambda: echo.active_calls == 0)
    await assert_all_media_torn_down()


async def test_echo_ends_calls_after_max_duration(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server(echo=True, echo_max_seconds=1.5)
    echo = echo_of(live)
    async with joined(live, client_ssl, "Ann") as ann:
        echo_id = await ann.wait_for_peer(ECHO_NAME)
        call = await ann.call(echo_id)
        hangup = await ann.wait_for_message("hangup")
        assert hangup["data"] == {"target": ann.id, "source": echo_id, "reason": "timeout"}
        await asyncio.wait_for(call.ended.wait(), 5)
        await eventually(lambda: echo.active_calls == 0)


async def test_renegotiation_is_answered_without_a_new_call(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server(echo=True, echo_max_calls=1)
    echo = echo_of(live)
    async with joined(live, client_ssl, "Ann") as ann:
        echo_id = await ann.wait_for_peer(ECHO_NAME)
        call = await ann.call(echo_id)
        await call.wait_for_video_frames(5)
        since = len(ann.messages)
        await call.renegotiate()
        await asyncio.wait_for(asyncio.shield(call.accepted), 10)
        assert [m["type"] for m in ann.messages[since:]] == ["accept"]  # no reject, no ring
        assert call.pc.signalingState == "stable"
        assert echo.active_calls == 1 and echo.calls_total == 1
        assert echo.calls[ann.id or ""].renegotiations == 1
        frames = call.video_frames
        await call.wait_for_video_frames(frames + 10)  # media keeps flowing


async def test_trickled_candidates_are_applied_even_before_the_offer(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    """A browser trickles its candidates; some may overtake the offer. Strip them from
    the SDP, send two before the offer and the rest (plus end-of-candidates) after."""
    live = await start_server(echo=True)
    echo = echo_of(live)
    async with joined(live, client_ssl, "Ann") as ann:
        echo_id = await ann.wait_for_peer(ECHO_NAME)
        call = Call(echo_id, ann.send, [], outgoing=True)
        ann.calls[echo_id] = call
        call.add_media(video=True, audio=False)
        call.open_channel()
        await call.pc.setLocalDescription(await call.pc.createOffer())
        sdp = call.pc.localDescription.sdp
        lines = sdp.split("\r\n")
        cands = [line[len("a=candidate:") :] for line in lines if line.startswith("a=candidate:")]
        assert cands, "aiortc gathered no candidates"
        stripped = "\r\n".join(
            line for line in lines if not line.startswith(("a=candidate:", "a=end-of-cand"))
        )

        def trickle(candidate: str | None) -> dict[str, Any]:
            value = (
                None
                if candidate is None
                else {"candidate": f"candidate:{candidate}", "sdpMid": "0", "sdpMLineIndex": 0}
            )
            return {"type": "icecandidate", "data": {"id": ann.id, "target": echo_id, "candidate": value}}

        early, late = cands[:2], cands[2:]
        for c in early:
            await ann.send(trickle(c))
        await ann.send({"type": "offer", "data": {"type": "offer", "sdp": stripped, "target": echo_id}})
        for c in late:
            await ann.send(trickle(c))
        await ann.send(trickle(None))
        await asyncio.wait_for(asyncio.shield(call.accepted), 10)
        await call.wait_for_video_frames(5)
        echo_call = echo.calls[ann.id or ""]
        await eventually(lambda: echo_call.candidates.applied == len(cands))
        transport = echo_call.pc.getTransceivers()[0].receiver.transport.transport
        remote = {candidate_to_sdp(c) for c in transport.getRemoteCandidates()}
        assert {c for c in cands} <= remote
        await call.hangup()
        await eventually(lambda: echo.active_calls == 0)


async def test_shutdown_ends_calls_cleanly(start_server: StartServer, client_ssl: ssl.SSLContext) -> None:
    live = await start_server(echo=True)
    echo = echo_of(live)
    async with joined(live, client_ssl, "Ann") as ann:
        call = await ann.call(await ann.wait_for_peer(ECHO_NAME))
        await call.wait_for_video_frames(3)
        await live.stop()
        assert echo.active_calls == 0
        assert echo.calls_total == 1
        await asyncio.wait_for(call.ended.wait(), 5)
    await assert_all_media_torn_down()


async def test_echo_rejoins_with_the_same_id_when_the_hub_drops_it(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    """The hub closes a socket that floods it (1008); the echo must come back."""
    live = await start_server(echo=True)
    echo = echo_of(live)
    first_conn, echo_id = echo.conn, echo.id
    assert first_conn is not None
    first_conn.close(1008, "rate limit exceeded")
    await eventually(lambda: echo.conn is not first_conn and live.hub.connections == 1)
    assert echo.id == echo_id
    async with joined(live, client_ssl, "Ann") as ann:
        assert await ann.wait_for_peer(ECHO_NAME) == echo_id
        call = await ann.call(echo_id)
        await call.wait_for_video_frames(3)


# --- pieces of server/webrtc.py that the echo relies on --------------------------------


def test_parse_candidate_accepts_browser_json_and_end_of_candidates() -> None:
    line = "candidate:842163049 1 udp 1677729535 192.168.1.5 54321 typ srflx raddr 0.0.0.0 rport 0"
    candidate = parse_candidate({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0})
    assert candidate is not None
    assert (candidate.ip, candidate.port, candidate.type, candidate.sdpMid) == (
        "192.168.1.5",
        54321,
        "srflx",
        "0",
    )
    host = parse_candidate({"candidate": "candidate:1 1 udp 2122260223 abc.local 5000 typ host"})
    assert host is not None and host.ip == "abc.local" and host.sdpMLineIndex == 0  # bundled default
    assert parse_candidate(None) is None
    assert parse_candidate({"candidate": "", "sdpMid": "0"}) is None  # Chrome's end-of-candidates
    for bad in ({"candidate": "candidate:garbage"}, {"candidate": 5}, "candidate:1 1 udp", []):
        with pytest.raises(ValueError):
            parse_candidate(bad)


async def test_remote_candidates_queue_until_the_description_and_are_capped() -> None:
    pc = RTCPeerConnection()
    try:
        queue = RemoteCandidates(pc)
        line = "candidate:1 1 udp 2122260223 192.0.2.{} 5000 typ host"
        for i in range(MAX_REMOTE_CANDIDATES + 5):
            await queue.add({"candidate": line.format(i % 250), "sdpMid": "0"})
        assert len(queue.pending) == MAX_REMOTE_CANDIDATES and queue.dropped == 5
        assert queue.applied == 0
    finally:
        await pc.close()


def test_rtc_url_from_what_users_type() -> None:
    assert rtc_url("https://192.168.1.2:3000/") == "wss://192.168.1.2:3000/rtc"
    assert rtc_url("https://host:3000") == "wss://host:3000/rtc"
    assert rtc_url("wss://host:3000/rtc") == "wss://host:3000/rtc"
