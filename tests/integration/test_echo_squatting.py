"""Echo peer squatting (issue 9, "Attacks" 8): offers whose ICE never completes must not
hold the echo's slots for long, and callers' junk must never get the echo itself
rate-limited into a 1008 close."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from lancall_peer.peer import PythonPeer
from server import echo as echo_module
from server.echo import ECHO, ECHO_NAME, EchoPeer
from tests.support.liveserver import LiveServer, StartServer
from tests.support.polling import eventually


def echo_of(live: LiveServer) -> EchoPeer:
    assert live.app is not None
    return live.app[ECHO]


async def unreachable_offer() -> str:
    """A well-formed offer whose ICE can never connect: its candidates are stripped and the
    peer connection that made it is closed, so nothing answers the echo's checks."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    lines = sdp.split("\r\n")
    return "\r\n".join(line for line in lines if not line.startswith(("a=candidate:", "a=end-of-cand")))


def messages_of(peer: PythonPeer, kind: str) -> list[dict[str, Any]]:
    return [m for m in peer.messages if m["type"] == kind]


async def test_an_offer_whose_ice_never_connects_frees_its_slot(
    start_server: StartServer, client_ssl: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(echo_module, "ICE_CONNECT_TIMEOUT", 1.0)  # 8 s in production
    live = await start_server(echo=True, echo_max_calls=2)
    echo = echo_of(live)
    async with (
        PythonPeer(live.url, "Squatter 1", ssl_context=client_ssl) as first,
        PythonPeer(live.url, "Squatter 2", ssl_context=client_ssl) as second,
        PythonPeer(live.url, "Ann", ssl_context=client_ssl) as ann,
    ):
        echo_id = await ann.wait_for_peer(ECHO_NAME)
        for squatter in (first, second):
            sdp = await unreachable_offer()
            await squatter.send({"type": "offer", "data": {"type": "offer", "sdp": sdp, "target": echo_id}})
            await squatter.wait_for_message("accept")  # the echo took the call: a slot is held
        assert echo.active_calls == 2

        # Both slots come back within the connect timeout plus teardown, each squatter told
        # with a hangup (reason `error`), not after aiortc's own ICE failure a minute later.
        await eventually(lambda: echo.active_calls == 0, within=5, what="both echo slots free")
        for squatter in (first, second):
            hangup = await squatter.wait_for_message("hangup")
            assert hangup["data"] == {"source": echo_id, "target": squatter.id, "reason": "error"}

        # A real caller gets a working call, so the freed slots are usable.
        call = await ann.call(echo_id)
        await call.wait_for_video_frames(3)
        await asyncio.sleep(1.5)  # past the connect timeout: a connected call is kept
        assert echo.active_calls == 1 and not call.ended.is_set()


async def test_callers_junk_never_gets_the_echo_closed(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    """Three callers each send junk offers at exactly their own rate limit for six seconds.
    The echo owes each a `reject`: three times any one socket's rate, sustained long enough
    that a metered socket would be closed (1008) after five such seconds."""
    live = await start_server(echo=True, rate_limit=2.0, rate_burst=4)
    echo = echo_of(live)
    conn_at_start = echo.conn
    per_caller = 12
    async with (
        PythonPeer(live.url, "Junk 1", ssl_context=client_ssl) as a,
        PythonPeer(live.url, "Junk 2", ssl_context=client_ssl) as b,
        PythonPeer(live.url, "Junk 3", ssl_context=client_ssl) as c,
    ):
        callers = (a, b, c)
        echo_id = await a.wait_for_peer(ECHO_NAME)
        junk = {"type": "offer", "data": {"type": "offer", "sdp": "this is not SDP", "target": echo_id}}
        for _ in range(per_caller):
            for caller in callers:
                await caller.send(junk)
            await asyncio.sleep(0.55)  # each caller stays within its own 2 messages/s

        def all_answered() -> bool:
            return all(len(messages_of(caller, "reject")) == per_caller for caller in callers)

        await eventually(all_answered, within=10, what="a reject for every junk offer")
        for caller in callers:
            assert not messages_of(caller, "error"), messages_of(caller, "error")  # never throttled
            assert {m["data"]["reason"] for m in messages_of(caller, "reject")} <= {"error", "busy"}
        assert echo.conn is conn_at_start and not echo.conn.closed  # never detached
        assert echo.id == echo_id
    await eventually(lambda: echo.active_calls == 0, within=10, what="every junk call torn down")
