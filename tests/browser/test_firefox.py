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
    finally:
        await fox.close()
