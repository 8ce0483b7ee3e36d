"""The signalling link as people meet it (issue 9, Users 2-4): a closed tab is gone at
once, the caller sees the callee's device ring, a caller hears at once that someone's
socket is gone, a frozen server is noticed, and "Retry now" reconnects at once."""

from __future__ import annotations

import asyncio
import json
import time

from playwright.async_api import Page, WebSocketRoute, expect

from tests.support.browseruser import User


async def test_closed_tab_is_gone_at_once_and_reopening_makes_one_bob(start_server, new_user):
    live = await start_server()  # resume grace 20 s: only a `leave` removes Bob sooner
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await expect(alice.person("Bob")).to_have_count(1)

    closed = time.monotonic()
    await bob.page.close()
    await expect(alice.person("Bob")).to_have_count(0, timeout=3000)
    assert time.monotonic() - closed < 3

    # Reopened (same browser profile, same name): one Bob, the new one.
    page = await bob.context.new_page()
    await page.goto(live.url)
    reopened = User("Bob", page, bob.context)
    await reopened.wait_for("window.__lanCall?.link === 'online'")
    await expect(alice.person("Bob")).to_have_count(1)
    await expect(alice.person("Bob")).to_have_attribute("data-peer-id", await reopened.id)


async def test_caller_sees_ringing_once_the_callee_rings(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")

    await alice.call(bob)
    await expect(bob.test_id("incoming-call")).to_be_visible()
    await expect(alice.test_id("call-status")).to_have_text("Ringing Bob…")
    assert await alice.call_state() == "calling"
    await bob.test_id("decline-call").click()
    await alice.wait_idle()


class Cable:
    """Bob's connection to the server, which the test can pull out: the server then sees
    a network drop (no `leave`), and Bob's reconnect attempts go nowhere."""

    def __init__(self) -> None:
        self.cut = False
        self.server_sides: list[WebSocketRoute] = []

    async def attach(self, page: Page) -> None:
        async def route(ws: WebSocketRoute) -> None:
            if self.cut:
                await ws.close()
                return
            server = ws.connect_to_server()
            self.server_sides.append(server)
            server.on_message(ws.send)
            ws.on_message(server.send)

        await page.route_web_socket("**/rtc*", route)

    async def pull(self) -> None:
        self.cut = True
        for server in self.server_sides:
            await server.close()


async def test_calling_someone_whose_socket_is_gone_says_so_at_once(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    cable = Cable()
    bob = await new_user(live, "Bob", before_load=cable.attach)
    bob_id = await bob.id

    await cable.pull()
    # Still listed (it may be a short network drop) ...
    await asyncio.sleep(0.5)
    await expect(alice.person("Bob")).to_have_attribute("data-peer-id", bob_id)
    # ... but calling says at once that Bob can't be reached, instead of ringing 20 s.
    started = time.monotonic()
    await alice.call(bob)
    await alice.wait_idle(timeout=3)
    assert time.monotonic() - started < 3
    await expect(alice.notices().last).to_have_text("Bob isn’t reachable right now")


class Freezer:
    """Pass the WebSocket through, until `freeze()`: from then on the sockets already open
    carry nothing either way (a frozen server that still holds the TCP connection).
    Sockets opened later reach the server, as after a real server coming back."""

    def __init__(self) -> None:
        self.frozen: set[int] = set()
        self.opened = 0

    async def attach(self, page: Page) -> None:
        async def route(ws: WebSocketRoute) -> None:
            number = self.opened = self.opened + 1
            server = ws.connect_to_server()
            server.on_message(lambda m: None if number in self.frozen else ws.send(m))
            ws.on_message(lambda m: None if number in self.frozen else server.send(m))

        await page.route_web_socket("**/rtc*", route)

    def freeze(self) -> None:
        self.frozen = set(range(1, self.opened + 1))


async def test_a_frozen_server_is_noticed_and_the_tab_reconnects(start_server, new_user):
    live = await start_server()
    freezer = Freezer()
    alice = await new_user(live, "Alice", before_load=freezer.attach)
    alice_id = await alice.id

    freezer.freeze()
    frozen = time.monotonic()
    await alice.wait_for("window.__lanCall.link !== 'online'", timeout=14)
    noticed = time.monotonic() - frozen
    await expect(alice.test_id("connection-status")).to_have_text("Reconnecting…")
    assert noticed <= 12, f"a dead link went unnoticed for {noticed:.1f} s"
    # The next socket gets through: back online under the same id.
    await alice.wait_for("window.__lanCall.link === 'online'", timeout=10)
    assert await alice.id == alice_id


async def test_retry_now_reconnects_at_once(start_server, new_user):
    """The page's clock is stopped once the server is down, so its own retry timer cannot
    fire: only "Retry now" can bring it back (issue 19, 20: the automatic retry sometimes
    won, and the button was gone before the click)."""

    async def fake_clock(page: Page) -> None:
        await page.clock.install()  # time runs as usual until paused

    live = await start_server()
    alice = await new_user(live, "Alice", before_load=fake_clock)

    await live.stop()
    banner = alice.test_id("link-banner")
    await expect(banner).to_be_visible(timeout=5000)
    await expect(banner).to_contain_text("Trying again")
    await alice.page.clock.pause_at(time.time() + 0.5)  # no timer of the page fires from now on
    await live.start()
    await expect(banner).to_be_visible()  # still down: nothing retried by itself
    assert await alice.js("window.__lanCall.link") != "online"
    async with alice.page.expect_websocket(timeout=5000):
        await alice.test_id("retry-now").click()
    await alice.wait_for("window.__lanCall.link === 'online'", timeout=5)
    await expect(banner).to_be_hidden()


async def test_a_ping_is_answered_and_keeps_the_link_online(start_server, new_user):
    live = await start_server()
    pongs: list[dict] = []

    async def watch(page: Page) -> None:
        page.on("websocket", lambda ws: ws.on("framereceived", lambda p: pongs.append(json.loads(p))))

    alice = await new_user(live, "Alice", before_load=watch)
    await asyncio.sleep(5)  # one ping period
    assert any(m.get("type") == "pong" for m in pongs), "the client sent no ping (or got no pong)"
    assert await alice.js("window.__lanCall.link") == "online"
