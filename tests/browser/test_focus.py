"""Keyboard focus around calls: an incoming call never grabs the keyboard, Tab stays in the
call screen, focus comes back to the person after hang-up, and icon buttons have tooltips."""

from __future__ import annotations

from playwright.async_api import expect

from tests.support.browseruser import connect_call

ACTIVE_ID = (
    "document.activeElement?.id || document.activeElement?.dataset.testid || document.activeElement?.tagName"
)


async def test_incoming_call_while_typing_a_name_does_not_answer(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    name = bob.test_id("name-input")
    await name.click()
    await name.press("End")
    await name.press_sequentially(" Sm")

    await alice.call(bob)
    await expect(bob.test_id("incoming-call")).to_be_visible()
    await bob.page.keyboard.type("ith Jr")  # wherever focus now is; a Space among the keys
    await bob.page.keyboard.press("Space")
    await bob.page.keyboard.press("Enter")
    await expect(name).to_be_focused()
    await expect(name).to_have_value("Bob Smith Jr")
    assert await bob.call_state() == "ringing"
    # Announced to screen readers instead of moving the keyboard, with the one key that
    # reaches the call (issue 19, 9: it took 10-11 Tabs).
    await expect(bob.test_id("incoming-announcement")).to_have_text(
        "Alice is calling you. Press Tab to answer or decline."
    )
    await expect(bob.test_id("incoming-call")).to_be_visible()
    assert await alice.call_state() in ("calling", "ringing")
    await bob.page.keyboard.press("Tab")
    await expect(bob.test_id("decline-call")).to_be_focused()  # Decline first: a stray Enter answers nothing
    await bob.page.keyboard.press("Tab")
    await expect(bob.test_id("accept-call")).to_be_focused()
    await bob.page.keyboard.press("Shift+Tab")
    await expect(bob.test_id("decline-call")).to_be_focused()
    assert await bob.call_state() == "ringing"

    # With nothing focused at all, Accept takes focus so a keyboard user can answer.
    await bob.test_id("decline-call").click()
    await bob.wait_idle()
    await alice.wait_idle()
    await bob.js("document.activeElement.blur()")
    await alice.call(bob)
    await expect(bob.test_id("accept-call")).to_be_focused()
    await bob.page.keyboard.press("Enter")
    await bob.wait_connected()


async def test_tab_stays_in_the_call_and_focus_returns_after_hang_up(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)

    seen = set()
    for _ in range(24):
        await alice.page.keyboard.press("Tab")
        seen.add(await alice.js(ACTIVE_ID))
        # From the last control Tab goes to the browser's own UI (the page's body), then back.
        inside = await alice.js(
            "document.activeElement === document.body"
            " || document.getElementById('call').contains(document.activeElement)"
        )
        assert inside, f"Tab left the call screen for {await alice.js(ACTIVE_ID)}"
    assert {"toggle-mic", "hang-up"} <= seen

    await alice.test_id("hang-up").focus()
    await alice.page.keyboard.press("Enter")
    await alice.wait_idle()
    await expect(alice.person("Bob")).to_be_focused()
    # The lobby is usable again.
    assert await alice.js("[...document.body.children].every((el) => !el.inert)")

    # The other side, whose call was ended for them, lands on the caller too.
    await bob.wait_idle()
    await expect(bob.person("Alice")).to_be_focused()


async def test_icon_buttons_have_tooltips_matching_their_labels(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    await alice.wait_media_flowing()
    await alice.test_id("toggle-chat").click()
    missing = await alice.js(
        """() => [...document.querySelectorAll('#call button, .preview-tools button')]
          .filter((b) => !b.innerText.trim())
          .filter((b) => {
            const label = b.getAttribute('aria-label') || '';
            const title = b.getAttribute('title') || '';
            // Mic and camera toggles say what a press does ("Turn microphone off").
            const toggle = ['mic', 'camera'].includes(b.dataset.action);
            return !title || (!toggle && title !== label);
          })
          .map((b) => `${b.dataset.testid || b.dataset.action}: ${b.getAttribute('title')}`)"""
    )
    assert missing == []
    # A label that changes keeps its tooltip in step.
    await bob.test_id("toggle-chat").click()
    await bob.test_id("chat-input").fill("hi")
    await bob.test_id("chat-input").press("Enter")
    await alice.page.keyboard.press("Escape")
    await bob.test_id("chat-input").fill("again")
    await bob.test_id("chat-input").press("Enter")
    chat = alice.test_id("toggle-chat")
    await expect(chat).to_have_attribute("aria-label", "Chat, 1 unread")
    await expect(chat).to_have_attribute("title", "Chat, 1 unread")
