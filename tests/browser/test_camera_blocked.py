"""Camera and microphone blocked: the page says so, says how to allow them, and asks again."""

from __future__ import annotations

from playwright.async_api import Page, expect

# The browser refuses until the person changes the site setting (window.__allow()).
REFUSE_UNTIL_ALLOWED = """
(() => {
  let allowed = false;
  window.__allow = () => { allowed = true; };
  const media = navigator.mediaDevices;
  const ask = media.getUserMedia.bind(media);
  media.getUserMedia = (constraints) => allowed ? ask(constraints)
    : Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
})();
"""


async def refuse_until_allowed(page: Page) -> None:
    await page.add_init_script(REFUSE_UNTIL_ALLOWED)


async def test_blocked_camera_says_how_to_allow_it_and_tries_again(start_server, new_user):
    live = await start_server()
    dana = await new_user(live, "Dana", before_load=refuse_until_allowed)
    assert await dana.js("window.__lanCall.media") == "blocked"
    message = dana.test_id("media-message")
    await expect(message).to_contain_text("Camera and microphone are blocked")
    await expect(message).to_contain_text("choose Allow, then Try again")
    await expect(dana.page.locator("#preview-off")).to_have_text("Camera blocked")
    retry = dana.test_id("retry-media")
    await expect(retry).to_be_visible()

    await retry.click()  # still refused: the message stays, nothing breaks
    await expect(retry).to_be_visible()
    assert await dana.js("window.__lanCall.media") == "blocked"

    await dana.js("window.__allow()")  # the person allowed it in the site settings
    await retry.click()
    await dana.wait_for("window.__lanCall.media === 'ready'")
    await expect(message).to_be_hidden()
    await expect(dana.test_id("lobby-camera")).to_be_enabled()
    await expect(dana.page.locator("#preview-off")).to_be_hidden()
