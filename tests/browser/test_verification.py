"""Verified contacts (issue 13, docs/verification.md): the code both sides show, the badge
after a reload, and the warning with nothing sent when a verified person's device changes."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote

from playwright.async_api import expect

from lancall_peer.peer import PythonPeer
from server import verification
from server.verification import CodeExchange
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
    # A fresh code on every connection (each side's nonce is in it), the same on both sides.
    second = await code_of(alice)
    assert second != first and second == await code_of(bob)
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


class LyingExchange(CodeExchange):
    """A peer that reveals another nonce than the one it committed to (one that would let
    it steer the code, if the other side took it)."""

    def receive(self, kind: str, data: object, remote_fingerprint: str | None) -> list[dict[str, str]]:
        sent = super().receive(kind, data, remote_fingerprint)
        return [{**m, "data": "5a" * 32} if m["type"] == "verify-reveal" else m for m in sent]


async def test_a_peer_that_breaks_the_code_exchange_gets_no_code(
    start_server, new_user, artifacts, client_ssl, monkeypatch
):
    monkeypatch.setattr(verification, "CodeExchange", LyingExchange)  # what ChannelCodes makes
    live = await start_server()
    alice = await new_user(live, "Alice")
    async with PythonPeer(live.url, "Mallory", ssl_context=client_ssl, video=False) as mallory:
        await mallory.wait_for_peer("Alice")
        call_task = asyncio.create_task(mallory.call(await alice.id))
        await alice.accept()
        await alice.wait_connected()
        await call_task
        await alice.test_id("verify-chip").click()
        code = alice.test_id("verify-code")
        await expect(code).to_contain_text(
            "No code for this connection: Mallory’s side did not keep to the code exchange"
        )
        await expect(code).to_contain_text("does not match its commitment")
        await expect(alice.test_id("mark-verified")).to_have_count(0)
        await expect(alice.test_id("verify-qr")).to_have_count(0)
        await shoot(alice, artifacts, "exchange-broken")


FAKE_CAMERA_JS = """async (src) => {
  const canvas = document.createElement('canvas');
  canvas.width = 480;
  canvas.height = 360;
  const context = canvas.getContext('2d');
  const show = async (url) => {
    if (!url) {
      window.__scanImage = null;  // nothing in front of the camera
      return;
    }
    const image = new Image();
    image.src = url;
    await image.decode();
    window.__scanImage = image;
  };
  window.__showToCamera = show;
  await show(src);
  const draw = () => {
    context.fillStyle = '#fff';
    context.fillRect(0, 0, canvas.width, canvas.height);
    if (window.__scanImage) context.drawImage(window.__scanImage, 110, 50, 260, 260);
  };
  draw();
  setInterval(draw, 50);
  navigator.mediaDevices.getUserMedia = async () => canvas.captureStream(15);
}"""


async def test_scanning_the_code_on_the_other_screen_verifies_and_a_different_one_warns(
    start_server, new_user, artifacts
):
    """The QR fallback (issue 18, 25): Bob points his camera at Alice's screen. A QR that is
    no code, then another link's code, are refused with words; hers verifies him."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    alice_code, bob_code = await asyncio.gather(code_of(alice), code_of(bob))
    assert alice_code == bob_code
    alice_qr = await alice.test_id("verify-qr").get_attribute("src")
    assert alice_qr

    # The camera sees nothing yet: the scan goes on, and can be stopped.
    await bob.js(FAKE_CAMERA_JS, None)
    await bob.page.set_viewport_size({"width": 360, "height": 740})
    await bob.test_id("scan-code").click()
    await bob.wait_for("document.querySelector('[data-testid=scan-video]')?.videoWidth > 0")
    await bob.page.screenshot(path=str(artifacts / "verification-scanning-360x740.png"))
    await bob.test_id("scan-cancel").click()
    await expect(bob.test_id("scan-video")).to_have_count(0)
    await expect(bob.test_id("verify-qr")).to_be_visible()
    await expect(bob.test_id("scan-result")).to_have_count(0)
    # Then the server's address QR, then a code of some other connection.
    await bob.js("(url) => window.__showToCamera(url)", "/qr.svg")
    await bob.test_id("scan-code").click()
    await expect(bob.test_id("scan-result")).to_contain_text("That QR code is not a security code")
    other = "LANCALL-VERIFY-2 acorn-actor-agent-alarm-album " + "ab" * 32
    await bob.js("(url) => window.__showToCamera(url)", f"/qr/text.svg?text={quote(other)}")
    await bob.test_id("scan-code").click()
    await expect(bob.test_id("scan-result")).to_contain_text("The codes differ")
    await expect(bob.test_id("verify-chip")).to_have_text("Verify")
    await bob.page.screenshot(path=str(artifacts / "verification-scan-differs-360x740.png"))
    # The camera is let go once a scan ends.
    assert await bob.js("() => document.querySelector('[data-testid=scan-video]') === null")

    await bob.js("(url) => window.__showToCamera(url)", alice_qr)
    await bob.test_id("scan-code").click()
    await expect(bob.test_id("verify-chip")).to_contain_text("Verified")
    await expect(bob.test_id("verify-sheet")).to_be_hidden()
    await expect(bob.test_id("contact")).to_contain_text("Alice")
