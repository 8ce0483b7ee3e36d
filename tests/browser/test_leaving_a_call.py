"""Leaving a live call by accident (issue 9, Users 9): Back asks first, closing the tab
gets the browser's prompt, and the end-of-call message survives an update reload."""

from __future__ import annotations

import asyncio

from playwright.async_api import Dialog, expect

from server.outbox import deliver
from tests.support.browseruser import connect_call


async def test_back_during_a_call_asks_before_ending_it(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    url = alice.page.url
    await connect_call(alice, bob)

    await alice.page.go_back()
    dialog = alice.test_id("leave-call-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("End the call with Bob?")
    assert alice.page.url == url and await alice.call_state() == "connected"

    await alice.test_id("leave-call-stay").click()
    await expect(dialog).to_be_hidden()
    assert await alice.call_state() == "connected"

    await alice.page.go_back()  # asks again
    await alice.test_id("leave-call-end").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())
    await expect(bob.notices().last).to_contain_text("Alice ended the call")
    assert alice.page.url == url  # back in the lobby, not off the app


async def test_a_call_that_ends_leaves_no_extra_history_entry(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    entry = "navigation.currentEntry.index"
    lobby_entry = await alice.js(entry)
    await connect_call(alice, bob)
    assert await alice.js(entry) == lobby_entry + 1  # the call's own entry, for Back
    await bob.test_id("hang-up").click()
    await alice.wait_idle()
    # Taken off again: Back from the lobby leaves the app in one press.
    await alice.wait_for(f"{entry} === {lobby_entry}")


async def test_closing_the_tab_during_a_call_asks_first(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)

    dialogs: list[str] = []

    async def stay(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        await dialog.dismiss()

    alice.page.on("dialog", stay)
    await alice.page.close(run_before_unload=True)
    await alice.wait_for("true")  # the page is still there
    assert dialogs == ["beforeunload"]
    assert await alice.call_state() == "connected"


async def test_end_of_call_message_survives_the_update_reload(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)

    deliver(live.hub.set_version("f00dfeed0002"), live.hub)
    await expect(alice.notices().last).to_contain_text("refresh after this call")
    async with alice.page.expect_navigation():
        await bob.test_id("hang-up").click()
    await alice.wait_for("window.__lanCall?.link === 'online'")
    assert await alice.js("document.body.dataset.version") == "f00dfeed0002"
    await expect(alice.notices().last).to_contain_text("Bob ended the call")
