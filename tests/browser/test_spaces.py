"""Spaces in the browser (docs/protocol.md §11): create one, join it by link or by code,
see only its people, leave to the open network; OPEN_SPACE=0 asks for a space first."""

from __future__ import annotations

import re

from playwright.async_api import expect

PHONE = {"width": 360, "height": 740}


async def test_people_in_a_space_see_only_each_other_and_join_by_link(start_server, new_user, artifacts):
    live = await start_server()
    origin = live.url.rstrip("/")
    alice = await new_user(live, "Alice", viewport=PHONE)
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await expect(alice.person("Carol")).to_have_count(1)

    page = alice.page
    await page.get_by_text("Space: open network").click()
    await page.get_by_role("button", name="Create a space").click()
    code = (await alice.test_id("space-code").text_content() or "").strip()
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{8}", code), code
    await expect(alice.test_id("space-summary")).to_have_text(f"Space {code}")
    await expect(page.get_by_role("heading", name=f"People in space {code}")).to_be_visible()
    link = alice.test_id("space-link")
    await expect(link).to_have_attribute("href", f"{origin}/?space={code}")
    qr = alice.test_id("space-qr")
    await expect(qr).to_have_attribute("alt", f"QR code for {origin}/?space={code}")
    await alice.wait_for("() => document.getElementById('space-qr').naturalWidth > 0")
    await expect(alice.page.get_by_test_id("person")).to_have_count(0)  # Bob and Carol are outside
    # "Invite a phone" carries the space (issue 19, 2): address, QR code and Copy.
    invite = alice.page.get_by_test_id("invite-url").locator("a")
    await expect(invite).to_have_attribute("href", re.compile(rf"^https://[^/]+/\?space={code}$"))
    await expect(invite).to_have_text(re.compile(rf"\?space={code}$"))
    await expect(alice.test_id("invite-qr")).to_have_attribute(
        "src", re.compile(rf"^/qr/text\.svg\?text=.*space%3D{code}$")
    )
    await alice.wait_for("() => document.querySelector('[data-testid=invite-qr]').naturalWidth > 0")
    await alice.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await alice.test_id("invite-copy").click()
    shown = await invite.inner_text()
    await expect(alice.test_id("invite-copied")).to_have_text(f"Copied: {shown}")
    assert await alice.js("navigator.clipboard.readText()") == shown
    await alice.page.locator(".invite").screenshot(path=str(artifacts / "space-invite-360.png"))
    # An empty space says so, and that a mistyped code is the likely reason (issue 19, 15).
    await expect(alice.test_id("people-empty")).to_contain_text(
        f"Nobody here yet — if you expected someone, check the code {code}."
    )
    await expect(bob.person("Alice")).to_have_count(0)
    await expect(carol.person("Alice")).to_have_count(0)
    await qr.scroll_into_view_if_needed()
    await page.get_by_test_id("spaces").screenshot(path=str(artifacts / "space-control-360.png"))
    await page.screenshot(path=str(artifacts / "space-lobby-360.png"))

    # Bob opens the link: he is in the space, and the address bar no longer carries it.
    await bob.page.goto(await link.get_attribute("href") or "")
    await bob.wait_for("window.__lanCall?.link === 'online'")
    await expect(bob.person("Alice")).to_have_count(1)
    await expect(alice.person("Bob")).to_have_count(1)
    await expect(bob.person("Carol")).to_have_count(0)
    await expect(carol.person("Bob")).to_have_count(0)
    assert "space=" not in bob.page.url

    # Remembered on this device: a reload (and its reconnect) stays in the space.
    await bob.page.reload()
    await bob.wait_for("window.__lanCall?.link === 'online'")
    await expect(bob.test_id("space-summary")).to_have_text(f"Space {code}")
    await expect(bob.person("Alice")).to_have_count(1)
    await expect(carol.person("Bob")).to_have_count(0)

    # Carol types the code (any case); a wrong code is explained and changes nothing.
    await carol.page.get_by_text("Space: open network").click()
    field = carol.page.get_by_label("Join a space: its code")
    await field.fill("k7m2q0")
    await carol.page.get_by_role("button", name="Join", exact=True).click()
    await expect(carol.test_id("space-hint")).to_contain_text("is not a space code")
    await field.fill(code.lower())
    await field.press("Enter")
    await expect(carol.person("Alice")).to_have_count(1)
    await expect(carol.person("Bob")).to_have_count(1)
    await expect(alice.person("Carol")).to_have_count(1)

    # Leaving to the open network: the space no longer lists her.
    await carol.page.get_by_role("button", name="Leave to the open network").click()
    await expect(alice.person("Carol")).to_have_count(0)
    await expect(carol.person("Alice")).to_have_count(0)
    await expect(carol.test_id("space-summary")).to_have_text("Space: open network")
    await expect(carol.test_id("invite-url").locator("a")).not_to_have_attribute("href", re.compile("space="))
    await expect(carol.test_id("invite-qr")).to_have_attribute("src", "/qr.svg")


async def test_without_an_open_network_the_page_asks_for_a_space(start_server, new_user):
    live = await start_server(open_space=False)
    dana = await new_user(live, "Dana", wait_media=False)
    await expect(dana.test_id("space-needed")).to_be_visible()
    await expect(dana.test_id("space-leave")).to_be_hidden()
    await expect(dana.test_id("people-empty")).to_contain_text("lists people by space")
    await dana.page.get_by_role("button", name="Create a space").click()
    code = (await dana.test_id("space-code").text_content() or "").strip()
    eli = await new_user(live, "Eli", wait_media=False)
    await eli.page.get_by_label("Join a space: its code").fill(code)
    await eli.page.get_by_role("button", name="Join", exact=True).click()
    await expect(eli.person("Dana")).to_have_count(1)
    await expect(dana.person("Eli")).to_have_count(1)
    await expect(dana.test_id("space-needed")).to_be_hidden()


async def test_who_is_in_a_space_can_be_seen_and_one_removed_while_the_others_move_on(
    start_server, new_user, artifacts
):
    """Issue 18, finding 28: see and remove who joined. Removing someone moves everyone
    else to a new code (each told by the remover, through the server, within the space);
    the person removed keeps the old code, alone."""
    live = await start_server()
    alice = await new_user(live, "Alice", viewport=PHONE)
    bob = await new_user(live, "Bob")
    mallory = await new_user(live, "Mallory")
    await expect(alice.person("Mallory")).to_have_count(1)
    await alice.page.get_by_text("Space: open network").click()
    await alice.page.get_by_role("button", name="Create a space").click()
    code = (await alice.test_id("space-code").text_content() or "").strip()
    for user in (bob, mallory):
        await user.page.goto(f"{live.url.rstrip('/')}/?space={code}")
        await user.wait_for("window.__lanCall?.link === 'online'")
    await expect(alice.person("Mallory")).to_have_count(1)
    await expect(alice.person("Bob")).to_have_count(1)

    members = alice.test_id("space-member")
    await expect(members).to_have_count(2)
    await expect(members.filter(has_text="Mallory")).to_contain_text("here since")
    await (
        members.filter(has_text="Mallory")
        .get_by_role("button", name="Remove Mallory from this space")
        .click()
    )
    confirm = alice.test_id("space-remove-confirm")
    await expect(confirm).to_contain_text("Remove Mallory? Everyone else here moves with you to a new code")
    await alice.test_id("spaces").screenshot(path=str(artifacts / "space-remove-confirm-360.png"))
    await alice.test_id("space-remove-yes").click()

    moved = (await alice.test_id("space-code").text_content() or "").strip()
    assert moved != code and re.fullmatch(r"[2-9A-HJKMNP-Z]{8}", moved)
    await expect(alice.test_id("space-summary")).to_have_text(f"Space {moved}")
    await expect(bob.test_id("space-summary")).to_have_text(f"Space {moved}")
    await expect(
        bob.page.get_by_text(f"Alice removed Mallory from this space: you moved with them to space {moved}.")
    ).to_be_visible()
    await expect(alice.person("Bob")).to_have_count(1)
    await expect(bob.person("Alice")).to_have_count(1)
    await expect(alice.person("Mallory")).to_have_count(0)
    await expect(mallory.test_id("space-summary")).to_have_text(f"Space {code}")  # the old code, alone
    await expect(mallory.page.get_by_test_id("person")).to_have_count(0)
    await expect(alice.test_id("space-member")).to_have_count(1)
    await alice.page.screenshot(path=str(artifacts / "space-after-remove-360.png"))
