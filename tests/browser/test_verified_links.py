"""Verified contacts outside calls (issue 13, docs/verification.md): the verified badge in
the conversation header and on file cards, and a held data link's warning with its
choices in the conversation view and on a file offer."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from playwright.async_api import Locator, expect

from tests.browser.test_verification import verify_each_other
from tests.support.browseruser import User, connect_call


async def open_conversation(user: User, name: str) -> None:
    item = user.page.get_by_test_id("people-list").locator("li").filter(has_text=name)
    await item.get_by_role("button", name="Message", exact=True).click()
    await expect(user.test_id("conversation")).to_be_visible()
    await expect(user.test_id("conversation-name")).to_contain_text(name)


async def say(user: User, text: str) -> None:
    await user.test_id("conversation-input").fill(text)
    await user.test_id("conversation-input").press("Enter")


async def send_file(sender: User, to: str, name: str, size: int = 20000) -> None:
    item = sender.page.get_by_test_id("people-list").locator("li").filter(has_text=to)
    async with sender.page.expect_file_chooser() as chooser_info:
        await item.get_by_role("button", name="Send files", exact=True).click()
    chooser = await chooser_info.value
    file: Any = {"name": name, "mimeType": "text/plain", "buffer": os.urandom(size)}
    await chooser.set_files(file)


def transfer(user: User, name: str) -> Locator:
    return user.test_id("transfer").filter(has_text=name)


async def hang_up(alice: User, bob: User) -> None:
    await alice.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())


async def online(user: User) -> None:
    await user.wait_for("window.__lanCall?.link === 'online' && window.__lanCall.media !== 'pending'")


async def forget_identity(user: User) -> None:
    """The browser forgets its identity (site data cleared): a new certificate on reload."""
    await user.js(
        """() => new Promise((resolve, reject) => {
             const request = indexedDB.deleteDatabase('lanCall.identity');
             request.onsuccess = () => resolve(true);
             request.onerror = () => reject(request.error);
           })"""
    )
    await user.page.reload()
    await online(user)


async def test_the_badge_shows_in_the_conversation_header_and_on_file_cards(
    start_server, new_user, artifacts
):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await verify_each_other(alice, bob)
    await hang_up(alice, bob)

    # After a reload nothing proves who Bob is yet: the first data link does, while the
    # conversation is open, and the header gains the badge then.
    await alice.page.reload()
    await online(alice)
    await alice.page.set_viewport_size({"width": 360, "height": 740})
    await open_conversation(alice, "Bob")
    header = alice.test_id("conversation-name")
    await expect(header.get_by_test_id("verified-badge")).to_have_count(0)
    await say(alice, "Verified, right?")
    await expect(alice.test_id("conversation-message")).to_have_count(1)
    await expect(alice.test_id("line-status")).to_have_count(0)  # delivered
    await expect(header.get_by_test_id("verified-badge")).to_be_visible()
    await expect(header).to_contain_text("(verified)")  # the badge's words for screen readers
    await alice.page.screenshot(path=str(artifacts / "verification-conversation-badge-360x740.png"))
    await alice.test_id("conversation-close").click()

    await send_file(alice, "Bob", "notes.txt")
    incoming = transfer(bob, "notes.txt")
    await expect(incoming.get_by_test_id("transfer-accept")).to_be_visible()
    await expect(incoming.get_by_test_id("verified-badge")).to_be_visible()
    await expect(incoming).to_contain_text("From Alice ✓ (verified)")
    await expect(transfer(alice, "notes.txt").get_by_test_id("verified-badge")).to_be_visible()
    await expect(transfer(alice, "notes.txt")).to_contain_text("To Bob")
    await expect(incoming.get_by_test_id("link-warning")).to_have_count(0)


async def test_a_held_data_link_warns_in_the_conversation_and_a_new_device_lets_messages_through(
    start_server, new_user, artifacts
):
    live = await start_server()
    alice = await new_user(live, "Alice", viewport={"width": 360, "height": 740})
    bob = await new_user(live, "Bob")
    await verify_each_other(alice, bob)
    await hang_up(alice, bob)

    await forget_identity(bob)
    await expect(alice.person("Bob")).to_be_visible()

    await open_conversation(alice, "Bob")
    await say(alice, "Is that you?")
    warning = alice.test_id("conversation").get_by_test_id("link-warning")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("This may not be Bob")
    await expect(alice.test_id("line-status")).to_contain_text("Not delivered")
    await alice.page.screenshot(path=str(artifacts / "verification-conversation-warning-360x740.png"))

    # A file from that device waits for the same choice: no Accept yet.
    await send_file(bob, "Alice", "from-bob.txt")
    offer = transfer(alice, "from-bob.txt")
    await expect(offer.get_by_test_id("link-warning")).to_be_visible()
    await expect(offer.get_by_test_id("transfer-accept")).to_be_hidden()
    await expect(bob.test_id("conversation-message")).to_have_count(0)  # nothing reached Bob

    # Bob writes meanwhile (issue 19, 5): his side says it waits for Alice, nothing fails
    # after 10 s, and Alice is told someone tried to write.
    await open_conversation(bob, "Alice")
    await say(bob, "Yes, a new phone")
    await expect(bob.test_id("conversation-status")).to_have_text(
        "Waiting for Alice to confirm your device: your messages arrive if they do."
    )
    await expect(warning.get_by_test_id("kept-messages")).to_have_text(
        "Bob sent a message meanwhile: it shows if you choose “It’s a new device”."
    )
    await expect(alice.test_id("conversation-message").filter(has_text="new phone")).to_have_count(0)
    await bob.page.screenshot(path=str(artifacts / "verification-held-conversation-1280x800.png"))

    await warning.get_by_test_id("link-warning-new-device").click()
    await expect(warning).to_have_count(0)
    await expect(alice.test_id("line-status")).to_have_count(0)  # the refused line went, delivered
    await expect(alice.test_id("conversation-message").filter(has_text="new phone")).to_have_count(1)
    await expect(bob.test_id("conversation-message")).to_have_text(
        ["You: Yes, a new phone", "Alice: Is that you?"]
    )
    await expect(bob.test_id("conversation-status")).to_have_text("")
    await expect(bob.test_id("line-status")).to_have_count(0)  # delivered, not failed
    await expect(offer.get_by_test_id("link-warning")).to_have_count(0)
    await expect(offer.get_by_test_id("transfer-accept")).to_be_visible()
    await expect(alice.test_id("conversation-name").get_by_test_id("verified-badge")).to_have_count(0)


async def test_group_tiles_show_each_members_verification(start_server, new_user, artifacts):
    """Alice verified Bob and Carol; Bob's device then changes. In a call with both, Carol's
    tile carries the badge, Bob's a warning mark, and the warning names Bob, not the first link."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    for other in (bob, carol):
        await verify_each_other(alice, other)
        await hang_up(alice, other)
    await forget_identity(bob)
    await expect(alice.person("Bob")).to_be_visible()

    await connect_call(alice, carol)
    await alice.wait_for("window.__lanCall.call !== null")
    await alice.page.get_by_role("button", name="Add people").click()
    await alice.test_id("add-person").filter(has_text="Bob").click()
    await expect(bob.test_id("incoming-call")).to_be_visible()
    await bob.accept()
    await expect(alice.test_id("tile")).to_have_count(2)
    warning = alice.test_id("verify-warning")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("This may not be Bob")
    bob_tile = alice.test_id("tile").filter(has_text="Bob")
    carol_tile = alice.test_id("tile").filter(has_text="Carol")
    await expect(bob_tile.get_by_test_id("tile-mismatch")).to_be_visible()
    await expect(bob_tile.get_by_test_id("verified-badge")).to_have_count(0)
    await expect(carol_tile.get_by_test_id("verified-badge")).to_be_visible()
    await expect(carol_tile.get_by_test_id("tile-mismatch")).to_have_count(0)
    await alice.test_id("warning-new-device").click()
    await alice.test_id("continue-unverified").click()
    await expect(warning).to_be_hidden()
    await alice.test_id("add-people-panel").get_by_role("button", name="Close").click()
    await alice.page.set_viewport_size({"width": 360, "height": 740})
    await alice.page.screenshot(path=str(artifacts / "verification-group-tiles-360x740.png"))
