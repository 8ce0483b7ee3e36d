"""Your name: sent only when you are done typing, never left blank, refused names put back,
and people with the same name told apart everywhere their name is shown."""

from __future__ import annotations

import asyncio
import json
import re

from playwright.async_api import Page, WebSocket, expect

from tests.support.browseruser import User

PHONE = "Chromium on Android"


def record_identifies(page: Page, sent: list[str]) -> None:
    def on_socket(ws: WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            message = json.loads(payload)
            if message.get("type") == "identify":
                sent.append(message["data"]["name"])

        ws.on("framesent", on_frame)

    page.on("websocket", on_socket)


async def test_name_is_sent_on_enter_or_blur_only(start_server, new_user):
    live = await start_server()
    sent: list[str] = []

    async def record(page: Page) -> None:
        record_identifies(page, sent)

    alice = await new_user(live, "Alice", before_load=record)
    bob = await new_user(live, "Bob")
    await expect(bob.person("Alice")).to_have_count(1)
    assert sent == ["Alice"]

    name = alice.test_id("name-input")
    await name.click()
    await name.press("End")
    await name.press_sequentially("x")
    await asyncio.sleep(1.2)  # a pause in typing, twice the old 0.6 s
    await name.press_sequentially("andra")
    await asyncio.sleep(1.2)
    await expect(bob.person("Alicexandra")).to_have_count(0)
    assert sent == ["Alice"], "a half-typed name went out"

    await name.press("Tab")  # done: leaving the box sends it
    await expect(bob.person("Alicexandra")).to_have_count(1)
    await name.fill("Alexandra")
    await name.press("Enter")
    await expect(bob.person("Alexandra")).to_have_count(1)
    await name.press("Tab")  # Enter then leaving the box: no second message
    await asyncio.sleep(0.3)
    assert sent == ["Alice", "Alicexandra", "Alexandra"]


async def test_a_cleared_name_comes_back_with_one_hint(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    name = alice.test_id("name-input")
    await name.fill("   ")
    await name.press("Enter")
    await expect(name).to_have_value("Alice")
    hint = alice.page.locator("#name-hint")
    await expect(hint).to_have_text("A name is needed so people know who is calling. You are still “Alice”.")
    # One message: no browser validation bubble as well.
    assert await name.evaluate("(el) => el.validationMessage") == ""
    await expect(bob.person("Alice")).to_have_count(1)
    # Cleared and left by Tab: the same.
    await name.fill("")
    await name.press("Tab")
    await expect(name).to_have_value("Alice")
    # The hint goes once a good name is saved.
    await name.fill("Alicia")
    await name.press("Enter")
    await expect(hint).to_be_hidden()
    await expect(bob.person("Alicia")).to_have_count(1)


async def test_a_refused_name_is_explained_and_the_old_one_kept(start_server, new_user):
    live = await start_server(echo=True)
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    name = alice.test_id("name-input")
    hint = alice.page.locator("#name-hint")
    await name.fill("echo TEST")  # the echo bot's name is reserved
    await name.press("Enter")
    await expect(hint).to_contain_text("“echo TEST” can’t be used")
    await expect(hint).to_contain_text("You are still “Alice”.")
    await expect(name).to_have_value("Alice")
    assert await alice.js("localStorage.getItem('lanCall.name')") == "Alice"
    await expect(alice.test_id("self-label")).to_have_text("You appear as Alice")
    await expect(bob.person("Alice")).to_have_count(1)
    # Only one message about it.
    await expect(alice.notices()).to_have_count(0)

    # The name is still Alice after a reconnect (the refused one was not kept anywhere).
    await alice.page.reload()
    await alice.wait_for("window.__lanCall?.link === 'online'")
    await expect(alice.test_id("name-input")).to_have_value("Alice")


async def tags_shown(user: User) -> list[str]:
    return await user.page.get_by_test_id("person").locator(".name").all_text_contents()


async def test_people_with_the_same_name_are_told_apart(start_server, new_user):
    live = await start_server()
    first = await new_user(live, PHONE)
    second = await new_user(live, PHONE)
    carol = await new_user(live, "Carol")
    await expect(carol.page.get_by_test_id("person")).to_have_count(2)

    # Each device shows itself with its code, the same code everyone else sees for it.
    first_self = await first.test_id("self-label").text_content() or ""
    second_self = await second.test_id("self-label").text_content() or ""
    code = re.compile(rf"^You appear as {PHONE} #[0-9A-Z]{{4}}$")
    assert code.match(first_self) and code.match(second_self) and first_self != second_self
    first_tag, second_tag = first_self.rsplit(" ", 1)[1], second_self.rsplit(" ", 1)[1]
    assert sorted(await tags_shown(carol)) == sorted([f"{PHONE} {first_tag}", f"{PHONE} {second_tag}"])
    await expect(first.person(PHONE)).to_have_text(re.compile(f"{second_tag}"))
    # Carol has a name of her own: no code for her.
    await expect(first.person("Carol").locator(".name")).to_have_text("Carol")
    await expect(carol.test_id("self-label")).to_have_text("You appear as Carol")
    # Full name with the code as the tooltip.
    await expect(carol.person(first_tag).locator(".name")).to_have_attribute("title", f"{PHONE} {first_tag}")

    # In the incoming-call panel and the call header too.
    await first.person("Carol").click()
    await expect(carol.test_id("incoming-name")).to_have_text(f"{PHONE} {first_tag}")
    await expect(carol.test_id("incoming-announcement")).to_contain_text(
        f"{PHONE} {first_tag} is calling you."
    )
    await carol.accept()
    await carol.wait_connected()
    await expect(carol.test_id("call-name")).to_have_text(f"{PHONE} {first_tag}")

    # Once the second device is renamed, nobody needs the codes any more.
    await second.test_id("name-input").fill("Dev phone")
    await second.test_id("name-input").press("Enter")
    await expect(first.test_id("self-label")).to_have_text(f"You appear as {PHONE}")
    await expect(second.person(PHONE).locator(".name")).to_have_text(PHONE)


async def test_a_name_past_the_limit_is_said_not_cut_silently(start_server, new_user):
    """Issue 19 (12): a 70-character name was cut to 64 with nothing said."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    name = alice.test_id("name-input")
    hint = alice.page.locator("#name-hint")
    long = "Alexandra " * 7  # 70 characters with the spaces
    await name.fill(long)
    await expect(hint).to_have_text(
        "Names can be up to 64 characters; this one has 69, so its end will be cut."
    )
    await name.press("Enter")
    kept = long.strip()[:64]
    await expect(hint).to_have_text(f"Names can be up to 64 characters, so yours was cut to “{kept}”.")
    await expect(name).to_have_value(kept)
    await expect(bob.person(kept)).to_be_visible()
