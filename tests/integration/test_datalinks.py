"""Data links between Python peers (docs/protocol.md §9): messages, requests, errors,
timeouts, named channels, glare and the idle close, with no call anywhere; and the
command line's --to/--message."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from lancall_peer.datalink import DataLink, DataLinkError
from lancall_peer.peer import PythonPeer, parse_args, run
from server.tls import CertFiles
from tests.support.liveserver import StartServer
from tests.support.polling import eventually

WAIT = 10.0


async def test_message_request_errors_and_channels_between_python_peers(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server()
    async with (
        PythonPeer(live.url, "Ann", ssl_context=client_ssl, wait_timeout=WAIT) as ann,
        PythonPeer(live.url, "Bob", ssl_context=client_ssl, wait_timeout=WAIT) as bob,
    ):
        bob_id, ann_id = await ann.wait_for_peer("Bob"), await bob.wait_for_peer("Ann")
        link = ann.data.peer(bob_id)
        assert await link.send_message("hello Bob")
        line = await bob.data.peer(ann_id).wait_for_line(0)
        assert line["text"] == "hello Bob"
        assert not ann.calls and not bob.calls  # no call, no ring
        assert await link.request("ping", {"t": 5}) == {"t": 5}

        bob.data.define("add", lambda d: isinstance(d, list) and all(isinstance(n, int) for n in d))
        ann.data.define("add", lambda d: True)  # Ann's app lets anything through; Bob's checks
        bob.data.subscribe("add", lambda d, _link: sum(d))
        assert await link.request("add", [1, 2, 3]) == 6
        with pytest.raises(DataLinkError) as bad:
            await link.request("add", ["x"])
        assert bad.value.code == "bad-request"
        ann.data.define("nobody", lambda d: True)
        with pytest.raises(DataLinkError) as unknown:
            await link.request("nobody")
        assert unknown.value.code == "unknown-type"

        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        bob.data.define("slow", lambda d: True)
        ann.data.define("slow", lambda d: True)
        bob.data.subscribe("slow", lambda d, _link: never)
        with pytest.raises(DataLinkError) as late:
            await link.request("slow", within=0.5)
        assert late.value.code == "timeout" and "didn't answer" in late.value.message

        # Malformed traffic is counted and ignored; the link stays up.
        assert link.service is not None
        link.service.send("{not json")
        link.service.send('{"type": "request", "data": {"id": 5}}')
        bob_link = bob.data.peer(ann_id)
        await eventually(lambda: bob_link.malformed >= 2, within=WAIT)
        assert await link.request("ping", {"t": 6}) == {"t": 6}

        received: list[Any] = []

        def adopt(_link: DataLink, channel: Any) -> None:
            channel.on("message", lambda data: received.append((channel.label, data)))

        bob.data.on_channel(adopt)
        channel = await link.channel("file:1")
        channel.send(b"\x00\x01chunk")
        await eventually(lambda: received, within=WAIT)
        assert received == [("file:1", b"\x00\x01chunk")]
        never.cancel()


async def test_glare_and_idle_close(start_server: StartServer, client_ssl: ssl.SSLContext) -> None:
    live = await start_server()
    async with (
        PythonPeer(live.url, "Ann", ssl_context=client_ssl, wait_timeout=WAIT) as ann,
        PythonPeer(live.url, "Bob", ssl_context=client_ssl, wait_timeout=WAIT) as bob,
    ):
        bob_id, ann_id = await ann.wait_for_peer("Bob"), await bob.wait_for_peer("Ann")
        # Both open at once: one link results, and both ends answer over it.
        both = await asyncio.gather(
            ann.data.peer(bob_id).request("ping", {"t": 1}), bob.data.peer(ann_id).request("ping", {"t": 2})
        )
        assert both == [{"t": 1}, {"t": 2}]
        ann_link, bob_link = ann.data.peer(bob_id), bob.data.peer(ann_id)
        assert ann_link.is_open and bob_link.is_open
        ann.data.idle_timeout = 0.5
        await eventually(lambda: bob_link.pc is None, within=WAIT)
        assert ann_link.ended_reasons[-1:] == ["idle"]
        assert bob_link.ended_reasons[-1:] in (["idle"], ["closed"])  # the hang-up, or the channel first
        assert await ann_link.request("ping", {"t": 3}) == {"t": 3}  # reopened on use


async def test_command_line_sends_messages(
    start_server: StartServer,
    client_ssl: ssl.SSLContext,
    cert_files: CertFiles,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live = await start_server()
    async with PythonPeer(live.url, "Ann", ssl_context=client_ssl, wait_timeout=WAIT) as ann:
        argv = [live.url, "--ca", str(cert_files.ca), "--name", "Script", "--to", "Ann"]
        argv += ["--message", "one", "--message", "two", "--seconds", "0"]
        assert await asyncio.wait_for(run(parse_args(argv)), WAIT) == 0
        # The script has left again; what it said stayed with Ann.
        lines = [line["text"] for link in ann.data.links.values() for line in link.lines]
        assert lines == ["one", "two"]
    out = capsys.readouterr().out
    assert "delivered to 'Ann': one" in out and "delivered to 'Ann': two" in out
