"""The page before a call: names, the people list, camera permission, what the page loads."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.async_api import Page, Request, WebSocket, expect

from tests.support.browseruser import connect_call


async def test_rename_propagates_live_and_is_remembered(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await expect(bob.person("Alice")).to_have_count(1)

    name = alice.test_id("name-input")
    await expect(name).to_have_value("Alice")
    await name.fill("  Alice   Cooper ")
    await name.press("Enter")
    await expect(bob.person("Alice Cooper")).to_have_count(1)
    await expect(bob.page.get_by_test_id("person")).to_have_count(1)  # renamed, not added
    await expect(name).to_have_value("Alice Cooper")

    # Remembered across a reload, and the reload keeps the same id (no leave/join).
    alice_id = await alice.id
    await alice.page.reload()
    await alice.wait_for("window.__lanCall?.link === 'online'")
    await expect(alice.test_id("name-input")).to_have_value("Alice Cooper")
    assert await alice.id == alice_id
    await expect(bob.person("Alice Cooper")).to_have_attribute("data-peer-id", alice_id)

    # Names are text, never markup.
    await name.fill('<img src=x onerror="window.__owned=1">')
    await name.press("Enter")
    await expect(bob.person("<img src=x")).to_have_count(1)
    assert await bob.page.locator("[data-testid=people-list] img").count() == 0


async def test_default_name_says_which_device(start_server, browser):
    live = await start_server()
    context = await browser.new_context(
        ignore_https_errors=True,
        user_agent=(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36"
        ),
    )
    try:
        page = await context.new_page()
        await page.goto(live.url)
        # The browser's brand list (Client Hints) wins over the user-agent string: this
        # Debian build calls itself "Chromium"; Google's build says "Google Chrome".
        name = page.get_by_test_id("name-input")
        await expect(name).to_have_value(re.compile(r"^Chrom(e|ium) on Android$"))
    finally:
        await context.close()


DEVICES = {
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1": "Safari on iPhone",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1": "Chrome on iPhone",
    "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0": "Firefox on Android",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36": "Samsung Internet on Android",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0": "Edge on Windows",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15": "Safari on Mac",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0": "Firefox on Linux",
}


async def test_default_names_for_common_devices(start_server, new_user):
    live = await start_server()
    user = await new_user(live, "Tester", wait_media=False)
    names = await user.js(
        """async (agents) => {
          const { defaultName } = await import(document.querySelector('script[type=module]').src
            .replace('app.js', 'core/names.js'));
          return agents.map((userAgent) => defaultName({ userAgent, maxTouchPoints: 0 }));
        }""",
        list(DEVICES),
    )
    assert dict(zip(DEVICES, names, strict=True)) == DEVICES
    ipad = await user.js(
        """async (ua) => (await import(document.querySelector('script[type=module]').src
            .replace('app.js', 'core/names.js'))).defaultName({ userAgent: ua, maxTouchPoints: 5 })""",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
    )
    assert ipad == "Safari on iPad"  # iPadOS asks for the desktop site and says "Mac"


async def test_page_makes_no_request_outside_its_origin(start_server, new_user):
    live = await start_server()
    requests: list[str] = []
    sockets: list[str] = []

    async def record(page: Page) -> None:
        def on_request(request: Request) -> None:
            requests.append(request.url)

        def on_socket(ws: WebSocket) -> None:
            sockets.append(ws.url)

        page.on("request", on_request)
        page.on("websocket", on_socket)
        # Any CSP violation (inline style or script, foreign URL) is a bug.
        await page.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    alice = await new_user(live, "Alice", before_load=record)
    bob = await new_user(live, "Bob")
    await expect(alice.page.get_by_test_id("invite-qr")).to_be_visible()
    await connect_call(alice, bob)
    await alice.wait_media_flowing()
    await alice.test_id("toggle-chat").click()
    await alice.test_id("toggle-more").click()
    await alice.test_id("toggle-stats").click()
    await alice.test_id("hang-up").click()
    await alice.wait_idle()

    origin = urlsplit(live.url)
    assert requests, "no requests recorded"
    for url in requests:
        parts = urlsplit(url)
        assert parts.scheme in ("https", "data", "blob"), url
        if parts.scheme == "https":
            assert (parts.hostname, parts.port) == (origin.hostname, origin.port), url
    assert [urlsplit(url)[:2] for url in sockets] == [("wss", origin.netloc)], sockets
    assert await alice.js("window.__csp") == []


async def test_denied_camera_still_allows_a_receive_only_call(start_server, new_user, denied_browser):
    live = await start_server()
    dana = await new_user(live, "Dana", browser=denied_browser)
    bob = await new_user(live, "Bob")
    assert await dana.js("window.__lanCall.media") == "blocked"
    await expect(dana.test_id("media-message")).to_contain_text("blocked")
    await expect(dana.test_id("media-message")).to_contain_text("still join calls")
    await expect(dana.test_id("lobby-camera")).to_be_disabled()

    await connect_call(dana, bob)
    # Dana sees and hears Bob; Bob gets no media from Dana but the call is up.
    await dana.wait_media_flowing()
    assert await dana.senders() == {}
    await expect(bob.page.locator("#remote-cover")).to_be_visible()
    await expect(dana.page.locator("#remote-cover")).to_be_hidden()
    await expect(dana.test_id("toggle-camera")).to_be_disabled()
    # Chat works too.
    await dana.test_id("toggle-chat").click()
    await dana.test_id("chat-input").fill("I can see you")
    await dana.test_id("chat-input").press("Enter")
    await expect(bob.page.get_by_test_id("chat-message")).to_have_text(["Dana: I can see you"])


async def test_echo_bot_is_listed_first_and_echoes(start_server, new_user):
    live = await start_server(echo=True)
    aaron = await new_user(live, "Aaron")
    await new_user(live, "Zoe")
    people = aaron.page.get_by_test_id("person")
    await expect(people).to_have_count(2)
    await expect(people.first).to_contain_text("Echo test")
    await expect(people.first).to_contain_text("Check your camera and mic")

    await people.first.click()
    await aaron.wait_connected()
    await aaron.wait_media_flowing()  # our own camera and mic, sent back
    await aaron.test_id("toggle-chat").click()
    await aaron.test_id("chat-input").fill("testing")
    await aaron.test_id("chat-input").press("Enter")
    await expect(aaron.page.get_by_test_id("chat-message").last).to_have_text("Echo test: Echo: testing")
    await aaron.test_id("hang-up").click()
    await aaron.wait_idle()


async def test_the_lobby_works_first_and_a_failed_load_of_the_rest_is_tried_again(
    start_server, new_user, browser
):
    """The people list needs only the lobby's scripts; the rest of the app (calls, files,
    messages) comes after. If that load fails (the network dropped mid-fetch), the list
    still works, the page says so, and a tap on a person loads it again and calls."""
    live = await start_server()
    bob = await new_user(live, "Bob")
    context = await browser.new_context(ignore_https_errors=True, viewport={"width": 360, "height": 740})
    await context.add_init_script("localStorage.setItem('lanCall.name', 'Alice')")
    failed: list[str] = []

    async def drop_once(route):
        failed.append(route.request.url)
        await route.abort()

    try:
        page = await context.new_page()
        await page.route(re.compile(r"/features[^/]*\.js$"), drop_once)
        await page.goto(live.url)
        await expect(page.get_by_test_id("person").filter(has_text="Bob")).to_have_count(1)
        await expect(page.get_by_test_id("notice").filter(has_text="could not load")).to_have_count(1)
        assert failed and await page.evaluate("() => window.__lanCall.loaded") is False
        await page.unroute(re.compile(r"/features[^/]*\.js$"))
        await page.get_by_test_id("person").filter(has_text="Bob").click()
        await page.wait_for_function("() => window.__lanCall.callState === 'calling'")
        await bob.wait_for("window.__lanCall.callState === 'ringing'")
    finally:
        await context.close()
