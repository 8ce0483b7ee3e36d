"""Verifying the members of a group call (docs/verification.md): nothing that opens a
security code lies under a tile, and each member's tile opens that member's own code, by
touch and by keyboard, at phone (360x740) and desktop (1280x800) sizes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from playwright.async_api import Locator, expect

from tests.browser.test_group_calls import three_in_a_call
from tests.support.browseruser import User

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
BOB = "Bob with a rather long name for a tile"  # it must not push "Verify" off the tile
CODE = re.compile(r"^\s*(\w+\s+){4}\w+\s*$")

# Every control on the call screen that opens a security code and is rendered, with what
# elementFromPoint finds at its centre (the control itself, or what covers it).
VERIFY_CONTROLS_JS = """() => {
  const found = [];
  const selector = '#call [data-testid="verify-chip"], #call [data-testid="tile-verify"]';
  for (const el of document.querySelectorAll(selector)) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
    const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    const cover = top && (top.closest('[data-testid]')?.dataset.testid || top.className || top.tagName);
    found.push({
      testid: el.dataset.testid, text: el.textContent.trim(), label: el.getAttribute('aria-label'),
      onTop: Boolean(top) && (top === el || el.contains(top)), cover,
      inView: r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight,
    });
  }
  return found;
}"""

# The focused element's ring, as a keyboard user sees it.
FOCUS_RING_JS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {testid: el.dataset.testid, style: style.outlineStyle, width: parseFloat(style.outlineWidth),
          visible: el.matches(':focus-visible')};
}"""


def tile_of(user: User, name: str) -> Locator:
    return user.test_id("tile").filter(has_text=name)


async def check_nothing_covered(user: User) -> list[dict]:
    controls: list[dict] = await user.js(VERIFY_CONTROLS_JS)
    covered = [c for c in controls if not c["onTop"] or not c["inView"]]
    assert not covered, f"{user.name}: verify controls covered or off screen: {covered}"
    return controls


async def check_controls_on_top(user: User, others: set[str]) -> None:
    """Each other member has a verify control, and every verify control shown is on top."""
    # The checks are known once every link has its code (the header chip gets its text).
    await expect(user.test_id("verify-chip")).to_have_text(re.compile(r"Verif"))
    await check_nothing_covered(user)
    for name in others:
        await expect(tile_of(user, name).get_by_test_id("tile-verify")).to_be_enabled()
    controls = await check_nothing_covered(user)
    labelled = {c["label"] for c in controls if c["testid"] == "tile-verify"}
    assert labelled == {f"Verify {name}" for name in others}, (user.name, controls)


async def sheet_code(user: User, name: str) -> str:
    """The code sheet is open about `name`: its five words."""
    sheet = user.test_id("verify-sheet")
    await expect(sheet).to_be_visible()
    await expect(sheet.get_by_role("heading")).to_have_text(f"Security code: {name}")
    await expect(sheet).to_contain_text(f"Read these words to {name}")
    code = user.test_id("verify-code")
    await expect(code).to_have_text(CODE)
    return " ".join((await code.inner_text()).split())


async def test_each_member_is_verified_from_their_tile_and_nothing_is_covered(
    start_server, new_user, artifacts: Path
):
    live = await start_server()
    alice = await new_user(live, "Alice", viewport=PHONE)
    bob = await new_user(live, BOB, viewport=DESKTOP)
    carol = await new_user(live, "Carol", viewport=DESKTOP)
    await three_in_a_call(alice, bob, carol)
    await asyncio.gather(
        check_controls_on_top(alice, {BOB, "Carol"}),
        check_controls_on_top(bob, {"Alice", "Carol"}),
        check_controls_on_top(carol, {"Alice", BOB}),
    )
    await alice.page.screenshot(path=str(artifacts / "group-verify-tiles-360x740.png"))
    await bob.page.screenshot(path=str(artifacts / "group-verify-tiles-1280x800.png"))

    # Alice taps Carol's name; Carol opens Alice's: the same five words, about each other.
    await tile_of(alice, "Carol").get_by_test_id("tile-verify").click()
    await tile_of(carol, "Alice").get_by_test_id("tile-verify").click()
    alice_code, carol_code = await asyncio.gather(sheet_code(alice, "Carol"), sheet_code(carol, "Alice"))
    assert alice_code == carol_code
    await alice.page.screenshot(path=str(artifacts / "group-verify-sheet-360x740.png"))
    await alice.test_id("mark-verified").click()
    await expect(alice.test_id("verify-sheet")).to_be_hidden()
    await expect(tile_of(alice, "Carol").get_by_test_id("verified-badge")).to_be_visible()
    await expect(tile_of(alice, "Carol").get_by_test_id("tile-verify")).to_have_accessible_name(
        "Carol, verified: show the security code"
    )
    await expect(tile_of(alice, BOB).get_by_test_id("tile-verify")).to_have_text(re.compile("Verify"))
    await expect(tile_of(alice, BOB).get_by_test_id("verified-badge")).to_have_count(0)
    await check_nothing_covered(alice)
    # Her link with Bob has another code.
    await tile_of(alice, BOB).get_by_test_id("tile-verify").click()
    alice_bob_code = await sheet_code(alice, BOB)
    assert alice_bob_code != alice_code
    await alice.page.keyboard.press("Escape")
    await expect(alice.test_id("verify-sheet")).to_be_hidden()

    # Bob, by keyboard: from Alice's tile, Tab reaches her verify control, with a ring;
    # Enter opens her code, Escape closes it and gives the focus back.
    control = tile_of(bob, "Alice").get_by_test_id("tile-verify")
    await tile_of(bob, "Alice").get_by_test_id("tile-focus").focus()
    await bob.page.keyboard.press("Tab")
    await expect(control).to_be_focused()
    ring = await bob.js(FOCUS_RING_JS)
    assert ring["visible"] and ring["style"] != "none" and ring["width"] >= 2, ring
    await bob.page.screenshot(path=str(artifacts / "group-verify-focus-1280x800.png"))
    await bob.page.keyboard.press("Enter")
    assert await sheet_code(bob, "Alice") == alice_bob_code
    await bob.page.screenshot(path=str(artifacts / "group-verify-sheet-1280x800.png"))
    await bob.page.keyboard.press("Escape")
    await expect(bob.test_id("verify-sheet")).to_be_hidden()
    await expect(control).to_be_focused()

    # Alice's grid once the notice "Carol is verified" has gone: Carol's badge, Bob's "Verify".
    await expect(alice.notices()).to_have_count(0, timeout=8000)
    await alice.page.screenshot(path=str(artifacts / "group-verify-verified-360x740.png"))
