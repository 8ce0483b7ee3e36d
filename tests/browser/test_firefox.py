"""A second engine (issue 20): Firefox ESR (driven over WebDriver BiDi by puppeteer-core,
tests/support/firefox.py) with Chromium through the real server, found by role and name as
a person would: calls each way with media both ways and the same security code on both
screens; a message and a 50 MB file each way; a group of three with Firefox in it; a
verified contact that survives a reload in Firefox and a server restart. Skipped, with one
line saying why, where Firefox or puppeteer-core is missing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.test_group_calls import LINKS_JS, wait_links
from tests.browser.test_verification import code_of
from tests.browser.test_verified_links import open_conversation, say
from tests.support.browseruser import MEDIA_STATS_JS, User, connect_call
from tests.support.firefox import FirefoxUser, missing, role

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

CODE = re.compile(r"^\s*(\w+\s+){4}\w+\s*$")
MEDIA_BOTH_JS = (
    "async () => { const s = await (" + MEDIA_STATS_JS + ")(); "
    "return s && s.videoFrames > 0 && s.audioBytes > 0 ? s : null; }"
)
CONNECTED_JS = "() => window.__lanCall.callState === 'connected'"
IDLE_JS = "() => window.__lanCall.callState === null && !document.getElementById('lobby').hidden"
RINGING_JS = """() => {
  const button = document.querySelector('[data-testid=accept-call]');
  return !!button && button.offsetParent !== null;
}"""
SCANNING_JS = """() => {
  const video = document.querySelector('[data-testid=verify-sheet] video');
  const stop = document.querySelector('[data-testid=scan-cancel]');
  return !!video && video.videoWidth > 0 && !video.paused && !!stop;
}"""
CLICK_PERSON_JS = """(name) => {
  const people = [...document.querySelectorAll('[data-testid=person]')];
  const person = people.find((p) => p.textContent.includes(name));
  if (person) person.click();
  return !!person;
}"""
CODE_JS = """() => {
  const code = document.querySelector('[data-testid=verify-code]');
  const words = code ? code.innerText.trim().split(/\\s+/) : [];
  return words.length === 5 ? words.join(' ') : null;
}"""


OpenFirefox = Callable[..., Awaitable[FirefoxUser]]


@pytest.fixture
async def firefox() -> AsyncIterator[OpenFirefox]:
    """`await firefox(live.url, "Fox")`: a person in Firefox, closed after the test."""
    opened: list[FirefoxUser] = []

    async def open_one(
        url: str, name: str, width: int = 1280, height: int = 800, **options: Any
    ) -> FirefoxUser:
        opened.append(await FirefoxUser.open(url, name, width, height, **options))
        return opened[-1]

    yield open_one
    for fox in opened:
        await fox.close()


PEOPLE = "#people > li"


async def fox_code(fox: FirefoxUser) -> str:
    await fox.click("[data-testid=verify-chip]")
    return str(await fox.wait_for(CODE_JS))


async def fox_sees(fox: FirefoxUser, name: str) -> None:
    await fox.wait_for(CLICK_PERSON_JS.replace("if (person) person.click();", ""), arg=name)


async def fox_calls(fox: FirefoxUser, name: str) -> None:
    await fox.click("[data-testid=person]", within=PEOPLE, text=name)


async def calls_fox(caller: User, fox: FirefoxUser) -> None:
    """A Chromium user calls Fox, who accepts: both connected."""
    await caller.person(fox.name).click()
    await fox.wait_for(RINGING_JS)
    await fox.click(role("Accept"))
    await asyncio.gather(caller.wait_connected(), fox.wait_for(CONNECTED_JS))


async def test_calls_between_chromium_and_firefox_each_way_with_the_same_security_code(
    start_server, new_user, firefox, artifacts
):
    live = await start_server()
    alice = await new_user(live, "Alice")
    fox = await firefox(live.url, "Fox")
    await expect(alice.person("Fox")).to_have_count(1)
    await fox_sees(fox, "Alice")

    # Chromium calls Firefox.
    await calls_fox(alice, fox)
    await alice.wait_media_flowing()
    await fox.wait_for(MEDIA_BOTH_JS)
    # The code's commit-then-reveal crosses engines: the same five words on both.
    alice_code, firefox_code = await asyncio.gather(code_of(alice), fox_code(fox))
    assert CODE.match(alice_code) and alice_code == firefox_code
    await fox.screenshot(artifacts / "firefox-in-call-code-1280x800.png")
    # Firefox has no BarcodeDetector: "Scan their code" runs jsQR in a worker on the
    # camera (a second capture while the call's own goes on).
    await fox.click(role("Scan their code"))
    await fox.wait_for(SCANNING_JS)
    await fox.screenshot(artifacts / "firefox-scanning-1280x800.png")
    await fox.click(role("Stop scanning"))
    await fox.wait_for("() => !document.querySelector('[data-testid=scan-cancel]')")
    await fox.wait_for(MEDIA_BOTH_JS)
    await fox.click("[data-testid=verify-sheet] " + role("Close"))
    await fox.click(role("Hang up"))
    await asyncio.gather(alice.wait_idle(), fox.wait_for(IDLE_JS))

    # Firefox calls Chromium.
    await fox_calls(fox, "Alice")
    await alice.test_id("accept-call").wait_for()
    await alice.accept()
    await asyncio.gather(alice.wait_connected(), fox.wait_for(CONNECTED_JS))
    await alice.wait_media_flowing()
    await fox.wait_for(MEDIA_BOTH_JS)
    await alice.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), fox.wait_for(IDLE_JS))
    assert await fox.page_errors() == []


# Once checked, the SHA-256 of what this device holds for the file of this name (read
# back from disk, as Save would hand it over).
RECEIVED_SHA_JS = """async (name) => {
  const incoming = [...window.__lanCall.files.entries.values()].filter((e) => e.direction === 'in');
  const entry = incoming.find((e) => e.transfer.offer.name === name);
  if (!entry || entry.transfer.state !== 'done') return null;
  const file = await entry.disk.file();
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}"""
STATUS_JS = """(name) => {
  const cards = [...document.querySelectorAll('[data-testid=transfer]')];
  const card = cards.find((c) => c.textContent.includes(name));
  return card?.querySelector('[data-testid=transfer-status]')?.textContent || '';
}"""
MESSAGES_JS = (
    """() => [...document.querySelectorAll('[data-testid=conversation-message]')].map((m) => m.textContent)"""
)
FILE_SIZE = 50_000_000  # the 50 MB


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_messages_and_50_mb_files_between_chromium_and_firefox_each_way(
    start_server, new_user, firefox, tmp_path, artifacts
):
    """Data links across engines, through the app's own controls: a message each way, and
    a 50 MB file each way, saved byte-identical (SHA-256 of what each receiver reads back
    from its disk)."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    fox = await firefox(live.url, "Fox", 360, 740)
    await expect(alice.person("Fox")).to_have_count(1)
    await fox_sees(fox, "Alice")

    await fox.click(role("Message"), within=PEOPLE, text="Alice")
    await fox.fill("#conversation-input", "Hello Chromium", press="Enter")
    await open_conversation(alice, "Fox")
    await expect(alice.test_id("conversation-message")).to_contain_text(["Hello Chromium"])
    await say(alice, "Hello Firefox")
    await fox.wait_for(f"() => ({MESSAGES_JS})().some((m) => m.includes('Hello Firefox'))")
    await fox.screenshot(artifacts / "firefox-conversation-360x740.png")
    await fox.click(role("Back to people"))
    await alice.test_id("conversation-close").click()

    to_firefox, to_chromium = tmp_path / "to-firefox.bin", tmp_path / "to-chromium.bin"
    for path in (to_firefox, to_chromium):
        path.write_bytes(os.urandom(FILE_SIZE))

    item = alice.page.get_by_test_id("people-list").locator("li").filter(has_text="Fox")
    async with alice.page.expect_file_chooser() as chooser:
        await item.get_by_role("button", name="Send files", exact=True).click()
    await (await chooser.value).set_files(to_firefox)
    await fox.click(role(f"Accept {to_firefox.name}"))
    await fox.wait_for(f"() => ({STATUS_JS})('{to_firefox.name}').startsWith('Received and checked')", 120)
    await fox.screenshot(artifacts / "firefox-file-received-360x740.png")
    assert (
        await fox.js(RECEIVED_SHA_JS, to_firefox.name) == hashlib.sha256(to_firefox.read_bytes()).hexdigest()
    )

    # On a phone the tray sits over the people list: hide it, as a person would.
    await fox.click(role("Hide the files"))
    await fox.choose_files(role("Send files"), [to_chromium], within=PEOPLE, text="Alice")
    offered = alice.test_id("transfer").filter(has_text=to_chromium.name)
    await offered.get_by_role("button", name="Accept").click()
    await expect(offered.get_by_test_id("transfer-status")).to_have_text(
        "Received and checked. Save it to keep it.", timeout=120_000
    )
    assert (
        await alice.js(RECEIVED_SHA_JS, to_chromium.name)
        == hashlib.sha256(to_chromium.read_bytes()).hexdigest()
    )
    assert await fox.page_errors() == []


async def fox_links(fox: FirefoxUser, names: set[str]) -> None:
    """Until Firefox is connected to exactly `names` and decodes video from each."""
    await fox.wait_for(
        f"""(names) => {{
          const links = ({LINKS_JS})();
          return links.length === names.length && links.every(([name, state, frames]) =>
            names.includes(name) && state === 'connected' && frames > 0);
        }}""",
        arg=sorted(names),
    )


async def test_a_group_of_two_chromium_and_one_firefox(start_server, new_user, firefox, artifacts):
    """Alice (Chromium) calls Bob (Chromium) and adds Fox (Firefox): everyone decodes
    everyone; Fox leaves and the other two carry on."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    fox = await firefox(live.url, "Fox", 360, 740)
    await expect(alice.person("Fox")).to_have_count(1)
    await connect_call(alice, bob)
    await alice.wait_for("window.__lanCall.call !== null")
    await alice.page.get_by_role("button", name="Add people").click()
    await alice.test_id("add-person").filter(has_text="Fox").click()
    await fox.wait_for(RINGING_JS)
    await fox.click(role("Accept"))
    await asyncio.gather(
        wait_links(alice, {"Bob", "Fox"}), wait_links(bob, {"Alice", "Fox"}), fox_links(fox, {"Alice", "Bob"})
    )
    await fox.wait_for("() => document.querySelectorAll('[data-testid=tile]').length === 2")
    await fox.screenshot(artifacts / "firefox-group-of-three-360x740.png")
    await fox.viewport(1280, 800)
    await fox.screenshot(artifacts / "firefox-group-of-three-1280x800.png")

    await fox.click(role("Leave call"))
    await fox.wait_for(IDLE_JS)
    await asyncio.gather(wait_links(alice, {"Bob"}), wait_links(bob, {"Alice"}))
    assert await alice.call_state() == "connected" and await bob.call_state() == "connected"
    assert await fox.page_errors() == []


VERIFIED_BADGE_JS = """(name) => {
  const people = [...document.querySelectorAll('[data-testid=person]')];
  const person = people.find((p) => p.textContent.includes(name));
  return !!person?.querySelector('[data-testid=verified-badge]');
}"""
CONTACT_JS = """(name) => [...document.querySelectorAll('[data-testid=contact]')]
  .some((c) => c.textContent.includes(name))"""
CHIP_JS = "() => document.querySelector('[data-testid=verify-chip]')?.textContent || ''"


async def test_a_verified_contact_in_firefox_survives_a_reload_and_a_server_restart(
    start_server, new_user, firefox, artifacts
):
    """Firefox keeps its certificate and its contacts in IndexedDB: after a reload and a
    server restart, the next call shows Verified on both sides without marking again."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    fox = await firefox(live.url, "Fox", 360, 740)
    await expect(alice.person("Fox")).to_have_count(1)
    await fox_sees(fox, "Alice")
    fox_id = await fox.id

    await calls_fox(alice, fox)
    codes = await asyncio.gather(code_of(alice), fox_code(fox))
    assert codes[0] == codes[1]
    await alice.test_id("mark-verified").click()
    await fox.click("[data-testid=mark-verified]")
    await expect(alice.test_id("verify-chip")).to_contain_text("Verified")
    await fox.wait_for(f"() => ({CHIP_JS})().includes('Verified')")
    await fox.click(role("Hang up"))
    await asyncio.gather(alice.wait_idle(), fox.wait_for(IDLE_JS))
    await fox.wait_for(VERIFIED_BADGE_JS, arg="Alice")

    # After a reload the contact is still there (IndexedDB); the lobby's badge waits for
    # a connection to prove it is her device (docs/verification.md).
    await fox.reload()
    await fox.wait_for(CONTACT_JS, arg="Alice")
    await fox.screenshot(artifacts / "firefox-verified-contact-360x740.png", full_page=True)

    await live.restart()
    await fox.wait_for("() => window.__lanCall.link !== 'online'", timeout=5)
    await fox.wait_for("() => window.__lanCall.link === 'online'")
    assert await fox.id == fox_id, "Firefox came back under a new id"
    await expect(alice.person("Fox")).to_have_attribute("data-peer-id", fox_id)

    await fox_calls(fox, "Alice")
    await alice.test_id("accept-call").wait_for()
    await alice.accept()
    await asyncio.gather(alice.wait_connected(), fox.wait_for(CONNECTED_JS))
    await expect(alice.test_id("verify-chip")).to_contain_text("Verified")
    await fox.wait_for(f"() => ({CHIP_JS})().includes('Verified')")
    await fox.click(role("Hang up"))
    await asyncio.gather(alice.wait_idle(), fox.wait_for(IDLE_JS))
    assert await fox.page_errors() == []


async def test_a_private_firefox_window_says_it_cannot_receive_files_and_both_sides_read_why(
    start_server, new_user, firefox, tmp_path, artifacts
):
    """Firefox gives a private window no origin private file system (SecurityError): the
    offer fails at once with words on both sides, instead of an Accept that breaks.
    Messages still go both ways."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    fox = await firefox(live.url, "Fox", 360, 740, private=True)
    await expect(alice.person("Fox")).to_have_count(1)
    await fox_sees(fox, "Alice")

    path = tmp_path / "holiday.jpg"
    path.write_bytes(os.urandom(20_000))
    item = alice.page.get_by_test_id("people-list").locator("li").filter(has_text="Fox")
    async with alice.page.expect_file_chooser() as chooser:
        await item.get_by_role("button", name="Send files", exact=True).click()
    await (await chooser.value).set_files(path)
    why = "A private window cannot receive files"
    await fox.wait_for(f"() => ({STATUS_JS})('holiday.jpg').includes('{why}')")
    sent = alice.test_id("transfer").filter(has_text="holiday.jpg")
    status = sent.get_by_test_id("transfer-status")
    await expect(status).to_contain_text(why)
    await expect(status).to_contain_text("They can be received in a normal window.")
    await fox.screenshot(artifacts / "firefox-private-window-file-360x740.png")
    await alice.page.screenshot(path=str(artifacts / "firefox-private-window-sender-1280x720.png"))
    assert not await fox.js(
        "() => !!document.querySelector('[aria-label=\"Accept holiday.jpg\"]')?.offsetParent"
    )

    await open_conversation(alice, "Fox")
    await say(alice, "Sent you a photo")
    alice_id = await alice.id
    await fox.wait_for(
        "(id) => window.__lanCall.messages.store.get(id)?.lines.some((l) => l.text === 'Sent you a photo')",
        arg=alice_id,
    )
    assert await fox.page_errors() == []
