"""Calls survive what happens around them: a restarted server, a network change, an
update of the app."""

from __future__ import annotations

import asyncio
import json
import re

from playwright.async_api import Page, WebSocket, expect

from server.outbox import deliver
from tests.support.browseruser import User, connect_call


class SocketLog:
    """Every WebSocket a page opens, to check that a tab never has two at once."""

    def __init__(self) -> None:
        self.opened = 0
        self.open_now = 0
        self.most_open = 0
        self.received: list[dict] = []

    async def attach(self, page: Page) -> None:
        def on_socket(ws: WebSocket) -> None:
            self.opened += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            ws.on("close", lambda _: setattr(self, "open_now", self.open_now - 1))
            ws.on("framereceived", lambda payload: self.received.append(json.loads(payload)))

        page.on("websocket", on_socket)


async def frames_keep_coming(user: User, more: int = 10) -> None:
    before = (await user.media_stats() or {}).get("videoFrames", 0)
    await user.wait_media_flowing(frames_above=before + more)


async def test_server_restart_mid_call_keeps_the_call_and_the_ids(start_server, new_user):
    live = await start_server()
    logs = {"Alice": SocketLog(), "Bob": SocketLog()}
    alice = await new_user(live, "Alice", before_load=logs["Alice"].attach)
    bob = await new_user(live, "Bob", before_load=logs["Bob"].attach)
    await connect_call(alice, bob)
    await asyncio.gather(alice.wait_media_flowing(), bob.wait_media_flowing())
    ids = {"Alice": await alice.id, "Bob": await bob.id}

    await live.restart()

    for user in (alice, bob):
        await user.wait_for("window.__lanCall.link !== 'online'", timeout=5)
    for user in (alice, bob):
        await user.wait_for("window.__lanCall.link === 'online'", timeout=10)
        assert await user.id == ids[user.name], f"{user.name} came back under a new id"
        assert logs[user.name].opened >= 2 and logs[user.name].most_open == 1
    # Media never went through the server: it kept flowing, and the call is still up.
    await asyncio.gather(frames_keep_coming(alice), frames_keep_coming(bob))
    assert await alice.call_state() == "connected" and await bob.call_state() == "connected"
    await expect(alice.person("Bob")).to_have_attribute("data-peer-id", ids["Bob"])
    await expect(bob.person("Alice")).to_have_attribute("data-peer-id", ids["Alice"])
    for user in (alice, bob):
        shown = await user.notices().all_inner_texts()
        await expect(user.notices(), f"{user.name} was told {shown}").to_have_count(0)

    # Signalling works again: hanging up reaches the other side.
    await bob.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())
    await expect(alice.notices().last).to_contain_text("Bob ended the call")


async def test_network_change_restarts_ice_and_resumes_without_flicker(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob_log = SocketLog()
    bob = await new_user(live, "Bob", before_load=bob_log.attach)
    await connect_call(alice, bob)
    await bob.wait_media_flowing()
    alice_id = await alice.id
    ufrag = "() => window.__lanCall.pc.localDescription.sdp.match(/a=ice-ufrag:(\\S+)/)[1]"
    old_ufrag = await alice.js(ufrag)

    # Wi-Fi drops and comes back on Alice's phone.
    await alice.context.set_offline(True)
    await alice.wait_for("window.__lanCall.link === 'offline'", timeout=5)
    await alice.context.set_offline(False)
    await alice.wait_for("window.__lanCall.link === 'online'", timeout=10)
    assert await alice.id == alice_id

    # The `online` event restarted ICE (an offer answered without ringing).
    await alice.wait_for(f"({ufrag})() !== {json.dumps(old_ufrag)}")
    await expect(bob.test_id("incoming-call")).to_be_hidden()
    await alice.wait_connected()
    await frames_keep_coming(bob)
    assert await bob.call_state() == "connected"
    # Bob never saw Alice leave and come back.
    assert not [m for m in bob_log.received if m.get("type") == "peer" and m["data"].get("remove")]


async def test_update_waits_for_the_call_to_end(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    alice_id = await alice.id
    await alice.js("window.__sameDocument = true")

    # A new version of the app is published (what live reload does on a file edit).
    deliver(live.hub.set_version("f00dfeed0001"), live.hub)
    await expect(alice.notices().last).to_contain_text("refresh after this call")
    assert await alice.call_state() == "connected"
    assert await alice.js("window.__sameDocument") is True

    async with alice.page.expect_navigation():
        await bob.test_id("hang-up").click()
    await alice.wait_for("window.__lanCall?.link === 'online'")
    assert await alice.js("document.body.dataset.version") == "f00dfeed0001"
    assert await alice.id == alice_id
    assert await alice.js("window.__sameDocument") is None


async def test_a_reload_in_a_call_picks_the_call_up_again(start_server, new_user):
    """Issue 19 (10): a reload during a 1:1 call ended it for both ("Bob ended the call").
    The reloaded page calls again under its id, and the other side takes it up with no
    second Accept. After an ordinary hang-up a reload calls nobody."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    await asyncio.gather(alice.wait_media_flowing(), bob.wait_media_flowing())
    bob_id = await bob.id

    await bob.page.reload()
    await bob.wait_for("window.__lanCall?.link === 'online'")
    assert await bob.id == bob_id
    await asyncio.gather(alice.wait_connected(), bob.wait_connected())
    await expect(alice.test_id("incoming-call")).to_be_hidden()  # nobody was asked again
    await frames_keep_coming(alice)
    await frames_keep_coming(bob)
    await expect(alice.test_id("call-name")).to_contain_text("Bob")

    # Hanging up is still the end: no rejoin after an ordinary hang-up.
    await bob.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())
    await expect(alice.notices().last).to_have_text(re.compile("^Bob ended the call"))
    await bob.page.reload()
    await bob.wait_for("window.__lanCall?.link === 'online'")
    await expect(alice.person("Bob")).to_be_visible()
    assert await alice.call_state() is None and await bob.call_state() is None
