"""The Python peer and the echo show a link's verification code (docs/verification.md):
both ends of a link compute the same five words, and the echo tells its code on request."""

from __future__ import annotations

import ssl

from lancall_peer.peer import PythonPeer
from server.echo import CODE_PREFIX, ECHO_NAME, ECHO_PREFIX
from server.verification import WORDS, sdp_fingerprint
from tests.support.liveserver import StartServer


async def test_two_python_peers_show_the_same_code(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server()
    async with (
        PythonPeer(live.url, "Ann", ssl_context=client_ssl) as ann,
        PythonPeer(live.url, "Bob", ssl_context=client_ssl) as bob,
    ):
        outgoing = await ann.call(await ann.wait_for_peer("Bob"))
        incoming = await bob.wait_for_call(ann.id)
        await outgoing.wait_for_video_frames(3)
        code = await outgoing.wait_for_code()
        assert code == await incoming.wait_for_code()
        assert outgoing.exchange is not None and incoming.exchange is not None
        assert outgoing.exchange.their_nonce == incoming.exchange.nonce  # each side's nonce is in it
        words = code.split()
        assert len(words) == 5 and all(word in WORDS for word in words)
        # Each end's fingerprint differs, so the code is about this pair of devices.
        local = outgoing.pc.localDescription
        remote = outgoing.pc.remoteDescription
        assert local is not None and remote is not None
        assert sdp_fingerprint(local.sdp) != sdp_fingerprint(remote.sdp)


async def test_echo_tells_its_code_when_asked(start_server: StartServer, client_ssl: ssl.SSLContext) -> None:
    live = await start_server(echo=True)
    async with PythonPeer(live.url, "Ann", ssl_context=client_ssl) as ann:
        call = await ann.call(await ann.wait_for_peer(ECHO_NAME))
        await call.wait_for_video_frames(3)
        code = await call.wait_for_code()
        await call.send_chat("hello")
        assert await call.wait_for_chat(0) == f"{ECHO_PREFIX}hello"
        await call.send_chat("Code")
        assert await call.wait_for_chat(1) == f"{CODE_PREFIX}{code}"
