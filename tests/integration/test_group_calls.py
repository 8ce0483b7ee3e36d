"""Group calls end to end with Python peers only (docs/protocol.md §8, issue 11): a real
server over TLS, real aiortc media over the LAN interface, a full mesh of up to six.

Six aiortc peers in one process hold 30 peer connections, each encoding and decoding its
own video; the video is kept small (160x120 at 10 fps) so the two cores of a CI machine
carry it. Every wait is bounded (`WAIT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import pytest

from lancall_peer.peer import PythonPeer, parse_args, run
from server.echo import ECHO
from server.tls import CertFiles
from tests.support.liveserver import LiveServer, StartServer
from tests.support.polling import eventually
from tests.support.rtcclient import RtcClient

MAX_CALL_SIZE = 6
WAIT = 30.0  # seconds any one wait may take: six peers set up 15 links on two cores
SMALL_VIDEO: dict[str, Any] = {"video_size": (160, 120), "video_fps": 10.0}
QUIET = 0.4  # how long "nothing arrives" is watched for


@contextlib.asynccontextmanager
async def python_peers(
    live: LiveServer, client_ssl: ssl.SSLContext, names: Sequence[str], **kw: Any
) -> AsyncIterator[list[PythonPeer]]:
    async with contextlib.AsyncExitStack() as stack:
        peers = []
        for name in names:
            peer = PythonPeer(live.url, name, ssl_context=client_ssl, wait_timeout=WAIT, **SMALL_VIDEO, **kw)
            peers.append(await stack.enter_async_context(peer))
        yield peers


def ids(peers: Sequence[PythonPeer]) -> set[str]:
    return {p.id for p in peers if p.id is not None}


async def fill_call(peers: Sequence[PythonPeer]) -> str:
    """A 1:1 call from the first peer to the second, then the first invites each of the
    rest in turn (each joins and offers to everyone before the next is invited)."""
    first, second = peers[0], peers[1]
    await first.call(await first.wait_for_peer(second.name))
    await asyncio.gather(*(p.wait_for_members(ids(peers[:2])) for p in peers[:2]))
    for count in range(3, len(peers) + 1):
        await first.invite(peers[count - 1].id or "")
        await asyncio.gather(*(p.wait_for_members(ids(peers[:count])) for p in peers[:count]))
    assert first.call_id is not None
    assert all(p.call_id == first.call_id for p in peers)
    return first.call_id


async def all_see_all(peers: Sequence[PythonPeer], frames: int = 5) -> None:
    """Every member decodes `frames` more video frames from every other member."""
    before = {p.id: p.frames_from_members() for p in peers}

    async def more(peer: PythonPeer) -> None:
        async with asyncio.timeout(WAIT):
            while True:
                now = peer.frames_from_members()
                if set(now) == ids(peers) - {peer.id} and all(
                    n >= before[peer.id].get(m, 0) + frames for m, n in now.items()
                ):
                    return
                await asyncio.sleep(0.05)

    await asyncio.gather(*(more(p) for p in peers))
    for peer in peers:
        for remote, call in peer.calls.items():
            assert remote in ids(peers) and call.pc.connectionState == "connected", (peer.name, remote)


def no_link(peer: PythonPeer, remote: str) -> Callable[[], bool]:
    return lambda: remote not in peer.calls


async def quiet(peers: Sequence[PythonPeer], seen: Sequence[int]) -> None:
    """None of `peers` receives anything past `seen` (their message counts before)."""
    await asyncio.sleep(QUIET)
    for peer, count in zip(peers, seen, strict=True):
        assert peer.messages[count:] == [], (peer.name, peer.messages[count:])


async def error_for(peer: PythonPeer, since: int, ref: str) -> dict[str, Any]:
    message = await peer.wait_for_message("error", lambda m: m["data"].get("ref") == ref, since=since)
    data: dict[str, Any] = message["data"]
    return data


async def test_six_members_each_receive_video_from_every_other_and_a_seventh_is_refused(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server(max_call_size=MAX_CALL_SIZE)
    names = [f"Member {n}" for n in range(1, MAX_CALL_SIZE + 1)]
    async with (
        python_peers(live, client_ssl, names) as members,
        python_peers(live, client_ssl, ["Seventh"]) as (seventh,),
    ):
        call_id = await fill_call(members)
        room = live.hub.room(call_id)
        assert room is not None and room.ids == [m.id for m in members]  # joining order
        await all_see_all(members)
        for member in members:  # one link per other member, each with traffic both ways
            traffic = await member.traffic_by_member()
            assert set(traffic) == ids(members) - {member.id}
            assert all(received > 0 and sent > 0 for received, sent in traffic.values())

        # The call is full: the seventh invitation is refused and reaches nobody.
        inviter = members[3]
        seen = [len(p.messages) for p in members]
        seventh_seen = len(seventh.messages)
        await inviter.invite(seventh.id or "")
        refusal = await error_for(inviter, seen[3], "invite")
        assert refusal["code"] == "call-full" and refusal["message"] == "This call is full"
        seen[3] += 1
        await quiet([*members, seventh], [*seen, seventh_seen])
        assert seventh.invitations == [] and seventh.call_id is None
        assert room.ids == [m.id for m in members] and room.invited == {}
        await all_see_all(members, frames=3)  # media untouched


async def test_a_member_leaving_and_one_vanishing_leave_the_others_connected(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server(resume_grace=0.5)
    async with python_peers(live, client_ssl, ["Ann", "Bob", "Cat", "Dan"]) as peers:
        ann, bob, cat, dan = peers
        call_id = await fill_call(peers)
        await all_see_all(peers)

        # Cat leaves on purpose: told the call is over for her, the others carry on.
        await cat.leave_call()
        ended = await cat.wait_for_message("call", lambda m: m["data"].get("ended") is True)
        assert ended["data"] == {"id": call_id, "members": [], "ended": True}
        assert cat.call_id is None and cat.calls == {}
        stayed = [ann, bob, dan]
        await asyncio.gather(*(p.wait_for_members(ids(stayed)) for p in stayed))
        for peer in stayed:  # their links to Cat are closed; she is still listed, in no call
            await eventually(no_link(peer, cat.id or ""), WAIT, what=f"{peer.name}'s link to Cat closed")
            assert peer.peers[cat.id or ""].in_call is False
        await all_see_all(stayed)

        # Dan vanishes (no leave, no hangup); after his grace period he leaves the call.
        await dan.drop()
        await asyncio.gather(*(p.wait_for_members(ids([ann, bob])) for p in (ann, bob)))
        for peer in (ann, bob):
            await peer.wait_for_peer_gone(dan.id or "")
            assert dan.id not in peer.calls
        room = live.hub.room(call_id)
        assert room is not None and room.ids == [ann.id, bob.id]  # two left: a normal call
        await all_see_all([ann, bob])
        assert cat.call_id is None and cat.calls == {}


async def _drain(raw: RtcClient) -> None:
    """Read what the raw client was sent until it has been quiet for a moment."""
    with contextlib.suppress(TimeoutError):
        while True:
            await raw.recv(QUIET)


async def test_refusals_get_the_protocols_error_and_reach_nobody(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server()
    async with (
        aiohttp.ClientSession() as session,
        python_peers(live, client_ssl, ["Ann", "Bob", "Olga"]) as (ann, bob, olga),
    ):
        raw = await RtcClient.connect(session, live.ws_url, "Raw client", ssl=client_ssl)
        call_id = await fill_call([ann, bob])
        await olga.wait_for_peer("Raw client")
        await _drain(raw)
        everyone = [ann, bob, olga]
        seen = [len(p.messages) for p in everyone]

        # Olga joins a call nobody invited her to.
        await olga.send({"type": "join", "data": {"call": call_id}})
        assert (await error_for(olga, seen[2], "join"))["code"] == "not-invited"
        # Ann relays a call-scoped offer to Olga, who is not a member.
        offer = {"type": "offer", "sdp": "v=0\r\n", "target": olga.id, "call": call_id}
        await ann.send({"type": "offer", "data": offer})
        assert (await error_for(ann, seen[0], "offer"))["code"] == "not-in-call"
        # Olga trickles a candidate into the call at Bob.
        candidate = {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": "0"}
        await olga.send(
            {"type": "icecandidate", "data": {"target": bob.id, "candidate": candidate, "call": call_id}}
        )
        assert (await error_for(olga, seen[2], "icecandidate"))["code"] == "not-in-call"
        # Ann invites the raw client, which cannot take part in group calls.
        await ann.send({"type": "invite", "data": {"target": raw.id, "call": call_id}})
        refusal = await error_for(ann, seen[0], "invite")
        assert refusal["code"] == "unsupported" and "Raw client" in refusal["message"]

        # Nothing else reached anyone: one error each to Ann (2) and Olga (2), none to Bob
        # or the raw client; membership and the media between Ann and Bob are untouched.
        seen[0] += 2
        seen[2] += 2
        await quiet(everyone, seen)
        await raw.silent(QUIET)
        room = live.hub.room(call_id)
        assert room is not None and room.ids == [ann.id, bob.id] and room.invited == {}
        assert olga.call_id is None and olga.calls == {}
        await all_see_all([ann, bob])
        await raw.ws.close()


async def test_command_line_calls_then_invites_and_bots_join_when_invited(
    start_server: StartServer,
    client_ssl: ssl.SSLContext,
    cert_files: CertFiles,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--call Ann --invite Bot` makes a call of three; `--join-when-invited` is what makes
    a peer join (without it the invitation is declined)."""
    assert parse_args(["URL", "--join-when-invited"]).join_when_invited is True
    assert parse_args(["URL"]).join_when_invited is False
    live = await start_server()
    async with (
        python_peers(live, client_ssl, ["Ann"]) as (ann,),
        python_peers(live, client_ssl, ["Bot"], join_when_invited=True) as (bot,),
        python_peers(live, client_ssl, ["Shy"], join_when_invited=False) as (shy,),
    ):
        argv = [live.url, "--ca", str(cert_files.ca), "--name", "Script", "--call", "Ann"]
        argv += [
            "--invite",
            "Bot",
            "--invite",
            "Shy",
            "--seconds",
            "3",
            "--video-size",
            "160x120",
            "--fps",
            "10",
        ]
        script = asyncio.create_task(run(parse_args(argv)))
        everyone = [ann, bot]
        script_id = await ann.wait_for_peer("Script")
        await asyncio.gather(*(p.wait_for_members(ids(everyone) | {script_id}) for p in everyone))
        declined = await shy.wait_for_message("invite")
        assert declined["data"]["source"] == script_id and shy.call_id is None
        assert await asyncio.wait_for(script, WAIT) == 0
    out = capsys.readouterr().out
    assert "invited 'Bot'" in out and "invited 'Shy'" in out
    assert "group call" in out and "3 members" in out
    assert "'Ann': " in out and "'Bot': " in out
    assert not re.search(r"\b0 video", out)  # both links carried video to the script ("30 video" did)


async def test_the_echo_joins_a_group_call_and_echoes_each_member_their_own_media(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    """Issue 11: the echo test peer can be a member. Invited into a call of two, it joins,
    offers to both (the joiner offers), and sends each member back what that member sends.
    Issue 18 (finding 29): someone else's 1:1 call with the echo does not make it busy."""
    live = await start_server(echo=True, echo_max_calls=4)
    async with python_peers(live, client_ssl, ["Ann", "Bob", "Cat"]) as (ann, bob, cat):
        echo_id = await cat.wait_for_peer("Echo test")
        cats = await cat.call(echo_id)
        await eventually(lambda: cats.video_frames >= 1, within=WAIT, what="Cat's echo")
        await ann.call(await ann.wait_for_peer(bob.name))
        await asyncio.gather(*(p.wait_for_members(ids([ann, bob])) for p in (ann, bob)))
        await ann.invite(echo_id)
        everyone = ids([ann, bob]) | {echo_id}
        await asyncio.gather(*(p.wait_for_members(everyone) for p in (ann, bob)))

        def echoed(peer: PythonPeer) -> Awaitable[bool]:
            return eventually(
                lambda: peer.frames_from_members().get(echo_id, 0) >= 5,
                within=WAIT,
                what=f"{peer.name}'s echo",
            )

        await asyncio.gather(echoed(ann), echoed(bob))
        assert ann.calls[echo_id].pc.connectionState == "connected"
        assert cats.pc.connectionState == "connected" and cats.video_frames >= 5  # still served on its own
        # Leaving: the echo's links end with the call, nothing is left running.
        await ann.leave_call()
        await bob.leave_call()
        await cats.hangup()
        await eventually(lambda: not live.hub.calls, within=WAIT, what="the call ended")
        echo = live.app[ECHO] if live.app is not None else None
        assert echo is not None
        await eventually(lambda: echo.active_calls == 0, within=WAIT, what="the echo's links closed")
