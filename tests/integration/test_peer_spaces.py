"""The Python peer in a space (docs/protocol.md §11): `PythonPeer(space=...)` and the command
line's `--space CODE`, so a bot or a test peer lives where its people are."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from lancall_peer.peer import PythonPeer, parse_args, run, space_code
from server.tls import CertFiles
from tests.support.liveserver import StartServer
from tests.support.polling import eventually

WAIT = 10.0


def test_space_codes_are_read_as_the_browser_reads_them() -> None:
    assert space_code("k7m2-qx") == space_code(" K7M2 QX ") == "K7M2QX"
    for bad in ("0OIL", "K7M", "K7M2QX" * 3, "K7M2_QX"):
        with pytest.raises(ValueError, match="not a space code"):
            space_code(bad)
    assert parse_args(["URL", "--space", "k7m2qx"]).space == "K7M2QX"
    with pytest.raises(SystemExit):
        parse_args(["URL", "--space", "0OIL"])


async def test_a_peer_in_a_space_sees_only_its_people_and_keeps_its_space_across_a_reconnect(
    start_server: StartServer, client_ssl: ssl.SSLContext
) -> None:
    live = await start_server()
    async with (
        PythonPeer(live.url, "Ann", ssl_context=client_ssl, wait_timeout=WAIT, space="k7m2-qx") as ann,
        PythonPeer(live.url, "Bob", ssl_context=client_ssl, wait_timeout=WAIT, space="K7M2QX") as bob,
        PythonPeer(live.url, "Olga", ssl_context=client_ssl, wait_timeout=WAIT) as olga,
    ):
        assert ann.space == "K7M2QX" and olga.space is None
        bob_id = await ann.wait_for_peer("Bob")
        assert await ann.data.peer(bob_id).send_message("only for the space")
        assert (await bob.data.peer(ann.id or "").wait_for_line(0))["text"] == "only for the space"
        since = len(olga.messages)
        await olga.send({"type": "offer", "data": {"type": "offer", "sdp": "v=0", "target": ann.id}})
        refused = await olga.wait_for_message("error", since=since)
        assert refused["data"]["code"] == "unknown-peer"
        assert {p.name for p in olga.peers.values()} == set()
        assert {p.name for p in ann.peers.values()} == {"Bob"}

        # A server restart: every peer reconnects and identifies again; Ann's identify
        # must name her space, or the server would move her to the open network.
        olga_from = len(olga.messages)
        await live.restart()
        for peer in (ann, bob, olga):
            await eventually(lambda p=peer: p.reconnects == 1, WAIT, what=f"{peer.name} reconnected")
        await eventually(lambda: (p := live.hub.peer(ann.id or "")) is not None and p.conn is not None, WAIT)
        await asyncio.sleep(2.0)  # past the peer's re-listing window (RELISTED_SECONDS)
        assert live.hub.peer(ann.id or "").space == "K7M2QX"  # type: ignore[union-attr]
        assert not [m for m in olga.messages[olga_from:] if m["type"] == "peer"]
        assert {p.name for p in ann.peers.values()} == {"Bob"}  # listed again, so kept

        # Ann moves to the open network: Bob sees her go, Olga sees her come.
        await ann.move_to_space(None)
        await olga.wait_for_peer("Ann")
        await bob.wait_for_peer_gone(ann.id or "")
        await ann.wait_for_peer_gone(bob_id)
        await ann.wait_for_peer("Olga")
        assert {p.name for p in ann.peers.values()} == {"Olga"}


async def test_command_line_space_and_a_server_without_the_open_network(
    start_server: StartServer,
    client_ssl: ssl.SSLContext,
    cert_files: CertFiles,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live = await start_server(open_space=False)
    async with PythonPeer(live.url, "Ann", ssl_context=client_ssl, wait_timeout=WAIT, space="K7M2QX") as ann:
        base = [live.url, "--ca", str(cert_files.ca), "--name", "Script"]
        assert await asyncio.wait_for(run(parse_args(base)), WAIT) == 2
        assert "this server has no open network: join a space: --space CODE" in capsys.readouterr().out
        argv = [*base, "--space", "k7m2qx", "--to", "Ann", "--message", "hello", "--seconds", "0"]
        assert await asyncio.wait_for(run(parse_args(argv)), WAIT) == 0
        out = capsys.readouterr().out
        assert "in space K7M2QX" in out and "delivered to 'Ann': hello" in out
        assert [line["text"] for link in ann.data.links.values() for line in link.lines] == ["hello"]
