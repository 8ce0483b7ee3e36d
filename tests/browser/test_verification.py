"""Verified contacts (issue 13, docs/verification.md): the code both sides show, the badge
after a reload, and the warning with nothing sent when a verified person's device changes."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import expect

from tests.support.browseruser import User, connect_call
from tests.support.mitm import SignallingMitm

OUTBOUND_BYTES_JS = """async () => {
  const pc = window.__lanCall.pc;
  let bytes = 0;
  if (pc) (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp') bytes += s.bytesSent || 0; });
  return bytes;
}"""


async def code_of(user: User) -> str:
    """Open the security-code sheet and read the five words once they are known."""
    if not await user.test_id("verify-sheet").is_visible():
        await user.test_id("verify-chip").click()
    code = user.test_id("verify-code")
    await expect(code).to_have_text(re.compile(r"^\s*(\w+\s+){4}\w+\s*$"))
    return " ".join((await code.inner_text()).split())


async def verify_each_other(alice: User, bob: User) -> str:
    await connect_call(alice, bob)
    alice_code, bob_code = await asyncio.gather(code_of(alice), code_of(bob))
    assert alice_code == bob_code
    for user in (alice, bob):
        await expect(user.test_id("verify-code")).to_have_attribute("data-source", "transport")
        await user.test_id("mark-verified").click()
        await expect(user.test_id("verify-chip")).to_contain_text("Verified")
    return alice_code


async def test_both_sides_show_the_same_code_and_a_verified_contact_keeps_its_badge(
    start_server, new_user, artifacts
):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    first = await verify_each_other(alice, bob)
    await expect(alice.test_id("call-name").get_by_test_id("verified-badge")).to_be_visible()
    await alice.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())
    await expect(alice.person("Bob").get_by_test_id("verified-badge")).to_be_visible()
    await expect(alice.test_id("contact")).to_have_count(1)
    await expect(alice.test_id("contact")).to_contain_text("Bob")

    # Reload both: same certificates from IndexedDB, so the same code, and the badge again.
    await asyncio.gather(alice.page.reload(), bob.page.reload())
    for user in (alice, bob):
        await user.wait_for("window.__lanCall?.link === 'online' && window.__lanCall.media !== 'pending'")
    await expect(alice.person("Bob")).to_be_visible()
    await connect_call(bob, alice)
    for user in (alice, bob):
        await expect(user.test_id("verify-chip")).to_contain_text("Verified")
        await expect(user.test_id("call-name").get_by_test_id("verified-badge")).to_be_visible()
    assert await code_of(alice) == first
    await alice.wait_media_flowing()
    await bob.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())

    # Contacts can be removed: the badge goes with them.
    await alice.test_id("contact-remove").click()
    await expect(alice.test_id("contact")).to_have_count(0)
    await expect(alice.person("Bob").get_by_test_id("verified-badge")).to_have_count(0)


async def outbound_bytes(user: User) -> int:
    return int(await user.js(OUTBOUND_BYTES_JS))


async def shoot(user: User, artifacts, name: str) -> None:
    """The same screen at phone and desktop size (test-artifacts/)."""
    for width, height in ((360, 740), (1280, 800)):
        await user.page.set_viewport_size({"width": width, "height": height})
        await asyncio.sleep(0.3)
        await user.page.screenshot(path=str(artifacts / f"verification-{name}-{width}x{height}.png"))


async def test_a_verified_contact_with_a_new_identity_is_held_until_re_verified(
    start_server, new_user, artifacts
):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await verify_each_other(alice, bob)
    await shoot(alice, artifacts, "badge")  # verifying closes the sheet
    await alice.test_id("verify-chip").click()
    await shoot(alice, artifacts, "code")
    await alice.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())

    # Bob's browser forgets its identity (site data cleared): a new certificate on reload.
    await bob.js(
        """() => new Promise((resolve, reject) => {
             const request = indexedDB.deleteDatabase('lanCall.identity');
             request.onsuccess = () => resolve(true);
             request.onerror = () => reject(request.error);
           })"""
    )
    await bob.page.reload()
    await bob.wait_for("window.__lanCall?.link === 'online' && window.__lanCall.media !== 'pending'")
    await expect(alice.person("Bob")).to_be_visible()
    # No tick for a device nobody has checked since it came back (issue 19, 4: "Bob ✓"
    # in the list, and on the incoming call right above the warning).
    await expect(alice.person("Bob").get_by_test_id("verified-badge")).to_have_count(0)
    await bob.call(alice)
    await expect(alice.test_id("incoming-call")).to_be_visible()
    await expect(alice.test_id("incoming-name")).to_have_text("Bob")
    await expect(alice.test_id("incoming-name").get_by_test_id("verified-badge")).to_have_count(0)
    await bob.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())
    await expect(alice.person("Bob").get_by_test_id("verified-badge")).to_have_count(0)

    await connect_call(alice, bob)
    await expect(alice.test_id("verify-warning")).to_be_visible()
    await expect(alice.test_id("verify-warning")).to_contain_text("This may not be Bob")
    await expect(alice.test_id("verify-chip")).to_contain_text("Not the verified device")
    # Bob's side still knows Alice's lasting identity: verified there.
    await expect(bob.test_id("verify-chip")).to_contain_text("Verified")
    await alice.wait_media_flowing()  # Bob's camera and mic reach Alice ...
    await asyncio.sleep(2.0)
    assert await outbound_bytes(alice) < 1000  # ... and nothing of Alice's reaches Bob
    assert (await bob.media_stats() or {}).get("videoFrames", 0) == 0
    await shoot(alice, artifacts, "warning")
    # The held side is told why nothing arrives (issue 19, 5), and what it writes waits.
    await expect(bob.test_id("held-chip")).to_have_text(
        "Waiting for Alice to confirm your device: Alice doesn’t see or hear you yet, "
        "and your messages arrive if they do."
    )
    await shoot(bob, artifacts, "held-side")
    await bob.test_id("toggle-chat").click()
    await bob.test_id("chat-input").fill("Is that you?")
    await bob.test_id("chat-input").press("Enter")
    await alice.test_id("toggle-chat").dispatch_event("click")  # under the warning
    await expect(alice.page.get_by_test_id("chat-message")).to_have_count(0)

    # "It's a new device": the code again, then verified; Alice's media now flows.
    await alice.test_id("warning-new-device").click()
    await alice.page.set_viewport_size({"width": 1280, "height": 800})
    assert await code_of(alice) == await code_of(bob)
    await alice.test_id("mark-verified").click()
    await expect(alice.test_id("verify-chip")).to_contain_text("Verified")
    await expect(alice.test_id("verify-warning")).to_be_hidden()
    await bob.wait_media_flowing()
    # What Bob wrote while held arrives now, and his screen no longer waits.
    await expect(alice.page.get_by_test_id("chat-message").filter(has_text="Is that you?")).to_have_count(1)
    await expect(bob.test_id("held-chip")).to_be_hidden()
    await expect(alice.test_id("contact")).to_have_count(1)  # the old device was replaced


async def test_a_server_in_the_middle_is_caught_on_both_sides(start_server, new_user, artifacts):
    """Two verified contacts; then the signalling path rewrites the fingerprints and puts its
    own aiortc peer between them. Both see the mismatch and send nothing."""
    live = await start_server()
    mitm = SignallingMitm()
    try:
        alice = await new_user(live, "Alice", before_load=mitm.attach)
        bob = await new_user(live, "Bob", before_load=mitm.attach)
        await verify_each_other(alice, bob)
        await alice.test_id("hang-up").click()
        await asyncio.gather(alice.wait_idle(), bob.wait_idle())

        mitm.intercept(await alice.id, await bob.id)
        await alice.call(bob)
        await expect(bob.test_id("incoming-warning")).to_be_visible()
        await bob.accept()
        await asyncio.gather(alice.wait_connected(), bob.wait_connected())
        assert not mitm.errors
        for user, other in ((alice, "Bob"), (bob, "Alice")):
            await expect(user.test_id("verify-warning")).to_be_visible()
            await expect(user.test_id("verify-warning")).to_contain_text(f"This may not be {other}")
        await asyncio.sleep(2.5)
        assert await outbound_bytes(alice) < 1000
        assert await outbound_bytes(bob) < 1000
        # The codes differ too: each victim's link ends at the attacker.
        for user in (alice, bob):
            await user.test_id("warning-new-device").click()  # shows the code, changes nothing yet
        alice_code, bob_code = await code_of(alice), await code_of(bob)
        assert alice_code != bob_code
        await alice.test_id("verify-sheet").get_by_role("button", name="Close").click()
        await alice.test_id("warning-not-them").click()
        await asyncio.gather(alice.wait_idle(), bob.wait_idle(timeout=20))
    finally:
        await mitm.close()
