"""A second engine (issue 20): Firefox ESR (driven over WebDriver BiDi by puppeteer-core,
tests/support/firefox.py) with Chromium through the real server: calls each way with
media both ways and the same security code on both screens. Skipped, with one line
saying why, where Firefox or puppeteer-core is missing."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import expect

from tests.browser.test_verification import code_of
from tests.support.browseruser import MEDIA_STATS_JS
from tests.support.firefox import FirefoxUser, missing

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


async def fox_code(fox: FirefoxUser) -> str:
    await fox.click("[data-testid=verify-chip]")
    return str(await fox.wait_for(CODE_JS))


async def test_calls_between_chromium_and_firefox_each_way_with_the_same_security_code(
    start_server, new_user, artifacts
):
    live = await start_server()
    alice = await new_user(live, "Alice")
    fox = await FirefoxUser.open(live.url, "Fox")
    try:
        await expect(alice.person("Fox")).to_have_count(1)
        await fox.wait_for(CLICK_PERSON_JS.replace("if (person) person.click();", ""), arg="Alice")

        # Chromium calls Firefox.
        await alice.person("Fox").click()
        await fox.wait_for(RINGING_JS)
        await fox.click("[data-testid=accept-call]")
        await asyncio.gather(alice.wait_connected(), fox.wait_for(CONNECTED_JS))
        await alice.wait_media_flowing()
        await fox.wait_for(MEDIA_BOTH_JS)
        # The code's commit-then-reveal crosses engines: the same five words on both.
        alice_code, firefox_code = await asyncio.gather(code_of(alice), fox_code(fox))
        assert CODE.match(alice_code) and alice_code == firefox_code
        await fox.screenshot(artifacts / "firefox-in-call-code-1280x800.png")
        await fox.click("[data-testid=verify-sheet] button[aria-label=Close]")
        await fox.click("[data-testid=hang-up]")
        await asyncio.gather(alice.wait_idle(), fox.wait_for(IDLE_JS))

        # Firefox calls Chromium.
        assert await fox.js(CLICK_PERSON_JS, "Alice")
        await alice.test_id("accept-call").wait_for()
        await alice.accept()
        await asyncio.gather(alice.wait_connected(), fox.wait_for(CONNECTED_JS))
        await alice.wait_media_flowing()
        await fox.wait_for(MEDIA_BOTH_JS)
        await alice.test_id("hang-up").click()
        await asyncio.gather(alice.wait_idle(), fox.wait_for(IDLE_JS))
        assert await fox.page_errors() == []
    finally:
        await fox.close()


# A file of `size` bytes made in the page from a seed (the same bytes in either engine),
# sent with the app; returns its SHA-256 (hex), for the receiver's to match.
SEND_FILE_JS = """async ([peerId, name, size]) => {
  const bytes = new Uint8Array(size);
  let x = 2463534242;
  for (let i = 0; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; bytes[i] = x & 255; }
  window.__lanCall.files.send(peerId, [new File([bytes], name, { type: 'application/octet-stream' })]);
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}"""
# Accept the file of this name as soon as it is offered; once checked, the SHA-256 of
# what this device holds for it (read back from disk).
ACCEPT_JS = """(name) => {
  const files = window.__lanCall.files;
  const incoming = [...files.entries.values()].filter((e) => e.direction === 'in');
  const offered = incoming.filter((e) => e.transfer.offer.name === name);
  for (const entry of offered) if (entry.transfer.state === 'offered') files.accept(entry.id);
  return offered.length > 0;
}"""
RECEIVED_SHA_JS = """async (name) => {
  const incoming = [...window.__lanCall.files.entries.values()].filter((e) => e.direction === 'in');
  const entry = incoming.find((e) => e.transfer.offer.name === name);
  if (!entry || entry.transfer.state !== 'done') return null;
  const file = await entry.disk.file();
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}"""
DONE_JS = """(name) => [...window.__lanCall.files.entries.values()]
  .some((e) => e.direction === 'in' && e.transfer.offer.name === name && e.transfer.state === 'done')"""
HAS_LINE_JS = """([peerId, text]) => {
  const conversation = window.__lanCall.messages.store.get(peerId);
  return !!conversation && conversation.lines.some((line) => line.text === text && !line.mine);
}"""
FILE_SIZE = 8 * 1024 * 1024


async def test_messages_and_files_between_chromium_and_firefox_each_way(start_server, new_user):
    """Data links across engines: a message each way, and an 8 MiB file each way, saved
    byte-identical (SHA-256 of what each receiver reads back from its disk)."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    fox = await FirefoxUser.open(live.url, "Fox")
    try:
        alice_id, fox_id = await alice.id, await fox.id
        await expect(alice.person("Fox")).to_have_count(1)
        await fox.wait_for(CLICK_PERSON_JS.replace("if (person) person.click();", ""), arg="Alice")

        await alice.js("([id, text]) => window.__lanCall.messages.send(id, text)", [fox_id, "Hello Firefox"])
        await fox.wait_for(HAS_LINE_JS, arg=[alice_id, "Hello Firefox"])
        await fox.js("([id, text]) => window.__lanCall.messages.send(id, text)", [alice_id, "Hello Chromium"])
        await alice.wait_for(HAS_LINE_JS, arg=[fox_id, "Hello Chromium"])

        sent = await alice.js(SEND_FILE_JS, [fox_id, "to-firefox.bin", FILE_SIZE])
        await fox.wait_for(ACCEPT_JS, arg="to-firefox.bin")
        await fox.wait_for(DONE_JS, timeout=60, arg="to-firefox.bin")
        assert await fox.js(RECEIVED_SHA_JS, "to-firefox.bin") == sent

        sent = await fox.js(SEND_FILE_JS, [alice_id, "to-chromium.bin", FILE_SIZE])
        await alice.wait_for(ACCEPT_JS, arg="to-chromium.bin")
        await alice.wait_for(DONE_JS, timeout=60, arg="to-chromium.bin")
        assert await alice.js(RECEIVED_SHA_JS, "to-chromium.bin") == sent
    finally:
        await fox.close()
