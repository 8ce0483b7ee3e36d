"""The real client (public/) against the "Echo test" peer and the Python peer: a person
checks camera, mic and chat against the server itself, and a script calls a person."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

from playwright.async_api import expect

from lancall_peer.peer import PythonPeer
from server.echo import ECHO, ECHO_NAME, ECHO_PREFIX, EchoPeer
from tests.support.browseruser import User
from tests.support.liveserver import LiveServer, StartServer

NewUser = Callable[..., Awaitable[User]]


def echo_of(live: LiveServer) -> EchoPeer:
    assert live.app is not None
    return live.app[ECHO]


async def eventually_zero_calls(echo: EchoPeer) -> None:
    """Every echo call torn down (a count, with no event to wait on: poll it)."""
    async with asyncio.timeout(10):
        while True:
            if echo.active_calls == 0:
                return
            await asyncio.sleep(0.05)


async def send_chat(user: User, text: str) -> None:
    if await user.test_id("chat-panel").is_hidden():
        await user.test_id("toggle-chat").click()
    await expect(user.test_id("chat-input")).to_be_enabled()
    await user.test_id("chat-input").fill(text)
    await user.test_id("chat-input").press("Enter")


async def test_browser_calls_the_echo_and_sees_itself(start_server: StartServer, new_user: NewUser) -> None:
    live = await start_server(echo=True)
    echo = echo_of(live)
    ann = await new_user(live, "Ann")
    await new_user(live, "Bob")

    # The echo is listed first, with its hint, even though "Bob" sorts before it.
    first = ann.test_id("person").first
    await expect(first).to_contain_text(ECHO_NAME)
    await expect(first).to_contain_text("Check your camera and mic")

    await first.click()
    await ann.wait_connected()  # accepted at once: no ringing on the other side
    assert echo.active_calls == 1
    # Headless Chromium decodes video (and receives audio, though it plays none).
    stats = await ann.wait_media_flowing(frames_above=5, timeout=15)
    assert stats["videoFrames"] > 5 and stats["audioPackets"] > 0
    await expect(ann.test_id("call-name")).to_have_text(ECHO_NAME)

    await send_chat(ann, "Can you hear me?")
    messages = ann.page.get_by_test_id("chat-message")
    await expect(messages).to_have_count(2)
    await expect(messages.nth(0)).to_contain_text("Can you hear me?")
    await expect(messages.nth(1)).to_contain_text(f"{ECHO_PREFIX}Can you hear me?")

    # The browser trickled its candidates; the echo applied them.
    call = echo.calls[await ann.id]
    assert call.candidates.applied > 0

    await ann.test_id("hang-up").click()
    await ann.wait_idle()
    await eventually_zero_calls(echo)


async def test_closing_the_tab_frees_the_echo_call(start_server: StartServer, new_user: NewUser) -> None:
    live = await start_server(echo=True, echo_max_calls=1, resume_grace=0.5)
    echo = echo_of(live)
    ann = await new_user(live, "Ann")
    await ann.person(ECHO_NAME).click()
    await ann.wait_connected()
    await ann.wait_media_flowing(timeout=15)
    assert echo.active_calls == 1
    await ann.page.close()
    await eventually_zero_calls(echo)

    # The only slot is free again for the next person.
    bob = await new_user(live, "Bob")
    await bob.person(ECHO_NAME).click()
    await bob.wait_connected()
    await bob.wait_media_flowing(timeout=15)


async def test_python_peer_calls_a_browser_user(
    start_server: StartServer,
    new_user: NewUser,
    client_ssl: ssl.SSLContext,
) -> None:
    live = await start_server()
    bob = await new_user(live, "Bob")
    async with PythonPeer(live.url, "Robot", ssl_context=client_ssl, audio=True) as robot:
        bob_id = await robot.wait_for_peer("Bob")
        calling = asyncio.create_task(robot.call(bob_id))
        await expect(bob.test_id("incoming-call")).to_be_visible()
        await expect(bob.test_id("incoming-name")).to_have_text("Robot")
        await bob.accept()
        call = await calling
        await bob.wait_connected()

        # Both directions: the browser decodes the synthetic video and receives the
        # tone; the Python peer receives the fake camera.
        stats = await bob.wait_media_flowing(frames_above=5, timeout=15)
        assert stats["videoFrames"] > 5 and stats["audioPackets"] > 0
        await call.wait_for_video_frames(10)

        await call.send_chat("Hello from Python")
        await bob.test_id("toggle-chat").click()
        await expect(bob.page.get_by_test_id("chat-message").last).to_contain_text("Hello from Python")
        await send_chat(bob, "Hello, robot")
        assert await call.wait_for_chat(0) == "Hello, robot"

        await bob.test_id("hang-up").click()
        await bob.wait_idle()
        await asyncio.wait_for(call.ended.wait(), 10)
        assert not robot.calls
