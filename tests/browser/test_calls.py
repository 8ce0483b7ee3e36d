"""Placing, answering and ending calls between real browser tabs (docs/protocol.md §7)."""

from __future__ import annotations

import asyncio
import json
import re

from playwright.async_api import Page, WebSocketRoute, expect

from tests.support.browseruser import connect_call


async def test_call_accept_flows_video_and_audio_both_ways(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")

    await alice.call(bob)
    # "Calling", then "Ringing" as soon as Bob's device rings (issue 9): either may show by now.
    await expect(alice.test_id("call-status")).to_have_text(re.compile(r"^(Calling|Ringing) Bob…$"))
    await expect(bob.test_id("incoming-call")).to_be_visible()
    await expect(alice.test_id("call-status")).to_have_text("Ringing Bob…")
    await expect(bob.test_id("incoming-name")).to_have_text("Alice")
    await expect(bob.test_id("accept-call")).to_be_focused()
    await bob.accept()

    await asyncio.gather(alice.wait_connected(), bob.wait_connected())
    alice_in, bob_in = await asyncio.gather(alice.wait_media_flowing(), bob.wait_media_flowing())
    assert alice_in["videoFrames"] > 0 and alice_in["audioBytes"] > 0
    assert bob_in["videoFrames"] > 0 and bob_in["audioBytes"] > 0
    for user, other in ((alice, bob), (bob, alice)):
        await expect(user.test_id("call-screen")).to_be_visible()
        await expect(user.test_id("call-name")).to_have_text(other.name)
        await expect(user.test_id("incoming-call")).to_be_hidden()
        await expect(user.test_id("call-timer")).to_have_text(re.compile(r"^0:\d\d$"))

    await alice.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())
    await expect(bob.notices().last).to_contain_text("Alice ended the call")
    await expect(alice.notices().last).to_contain_text("Call with Bob ended")


async def test_decline_ends_the_attempt_on_both_sides(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")

    await alice.call(bob)
    await bob.test_id("decline-call").click()

    await asyncio.gather(alice.wait_idle(), bob.wait_idle())
    await expect(alice.notices().last).to_have_text("Bob declined the call")
    await expect(bob.notices().last).to_have_text("You declined Alice’s call")
    await expect(bob.test_id("incoming-call")).to_be_hidden()


async def test_cancel_while_ringing_stops_the_ring(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")

    await alice.call(bob)
    await expect(bob.test_id("incoming-call")).to_be_visible()
    await expect(alice.test_id("hang-up")).to_have_attribute("aria-label", "Cancel call")
    await alice.test_id("hang-up").click()

    await asyncio.gather(alice.wait_idle(), bob.wait_idle())
    await expect(bob.test_id("incoming-call")).to_be_hidden()
    await expect(bob.notices().last).to_have_text("Missed call from Alice")
    await expect(alice.notices().last).to_have_text("Call cancelled")


async def test_ring_timeout_ends_in_no_answer(start_server, new_user):
    live = await start_server(ring_timeout=2)
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")

    await alice.call(bob)
    await expect(bob.test_id("incoming-call")).to_be_visible()
    # Nobody answers: the caller gives up after the server's ring timeout (2 s here).
    await asyncio.gather(alice.wait_idle(timeout=6), bob.wait_idle(timeout=6))
    await expect(alice.notices().last).to_have_text("No answer from Bob")
    await expect(bob.notices().last).to_have_text("Missed call from Alice")
    await expect(bob.test_id("incoming-call")).to_be_hidden()


async def test_busy_callee_is_not_disturbed(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await connect_call(alice, bob)

    await carol.call(bob)
    # Call waiting (issue 11): Bob sees who calls inside his call and declines; Carol hears "busy".
    await bob.test_id("waiting-decline").click()
    await carol.wait_idle()
    await expect(carol.notices().last).to_have_text("Bob is in another call")
    # Bob never saw a ring, and his call with Alice goes on.
    await expect(bob.test_id("incoming-call")).to_be_hidden()
    assert await bob.call_state() == "connected"
    assert await alice.call_state() == "connected"
    await bob.wait_media_flowing()


class HeldOffers:
    """Incoming offers kept back from pages whose signalling socket the test routes, so
    two offers can be made to cross on the wire."""

    def __init__(self, expected: int) -> None:
        self.messages: list[tuple[WebSocketRoute, str]] = []
        self.expected = expected
        self.all_held = asyncio.Event()

    def hold(self, ws: WebSocketRoute, message: str) -> None:
        self.messages.append((ws, message))
        if len(self.messages) >= self.expected:
            self.all_held.set()

    def release(self) -> None:
        for ws, message in self.messages:
            ws.send(message)


async def hold_offers(page: Page, held: HeldOffers) -> None:
    async def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            if isinstance(message, str) and json.loads(message).get("type") == "offer":
                held.hold(ws, message)
            else:
                ws.send(message)

        server.on_message(to_page)
        ws.on_message(server.send)

    await page.route_web_socket("**/rtc*", route)


async def test_glare_both_calling_at_once_ends_in_one_call(start_server, new_user):
    live = await start_server()
    held = HeldOffers(expected=2)

    async def hold(page: Page) -> None:
        await hold_offers(page, held)

    alice = await new_user(live, "Alice", before_load=hold)
    bob = await new_user(live, "Bob", before_load=hold)

    # Both tap at once; neither offer is delivered until both were sent.
    await asyncio.gather(alice.call(bob), bob.call(alice))
    await asyncio.wait_for(held.all_held.wait(), 5)
    assert await alice.call_state() == "calling" and await bob.call_state() == "calling"
    held.release()

    await asyncio.gather(alice.wait_connected(), bob.wait_connected())
    await asyncio.gather(alice.wait_media_flowing(), bob.wait_media_flowing())
    # One call: neither side rang or was told anything, and it stays up.
    await asyncio.sleep(0.5)
    for user in (alice, bob):
        assert await user.call_state() == "connected"
        await expect(user.test_id("incoming-call")).to_be_hidden()
        await expect(user.notices()).to_have_count(0)


async def test_callee_leaving_ends_a_ringing_call(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")

    await alice.call(bob)
    await expect(bob.test_id("incoming-call")).to_be_visible()
    await bob.page.close()  # Bob closes the tab while it rings

    await alice.wait_idle()
    await expect(alice.notices().last).to_have_text("Bob left")


async def test_calling_someone_who_just_left_says_so(start_server, new_user):
    live = await start_server(resume_grace=0)

    async def miss_departures(page: Page) -> None:
        """Alice's socket loses the "Bob left" announcement, as in a race with her tap."""

        async def route(ws: WebSocketRoute) -> None:
            server = ws.connect_to_server()

            def to_page(message: str | bytes) -> None:
                data = json.loads(message) if isinstance(message, str) else {}
                if not (data.get("type") == "peer" and data["data"].get("remove")):
                    ws.send(message)

            server.on_message(to_page)
            ws.on_message(server.send)

        await page.route_web_socket("**/rtc*", route)

    alice = await new_user(live, "Alice", before_load=miss_departures)
    bob = await new_user(live, "Bob")
    await expect(alice.person("Bob")).to_have_count(1)
    await bob.context.close()
    await alice.wait_for("window.__lanCall.link === 'online'")

    await alice.call(bob)  # the server answers `unknown-peer`
    await alice.wait_idle()
    await expect(alice.notices().last).to_have_text("Bob is no longer here")
    await expect(alice.person("Bob")).to_have_count(0)
