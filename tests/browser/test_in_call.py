"""What people do during a call: chat, mute, turn the camera off, switch devices, look at
stats; and what the in-call screen looks like on a phone and on a desktop."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from playwright.async_api import expect

from tests.support.browseruser import User, connect_call


async def test_chat_both_ways_with_typing_indicator(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    await bob.test_id("toggle-chat").click()
    await expect(bob.test_id("chat-panel")).to_be_visible()
    await alice.test_id("toggle-chat").click()
    chat_input = alice.test_id("chat-input")
    await expect(chat_input).to_be_enabled()  # the data channel is open
    await expect(chat_input).to_be_focused()

    await chat_input.press_sequentially("Hello B")
    await expect(bob.test_id("typing-indicator")).to_have_text("Alice is typing…")
    await chat_input.press_sequentially("ob <b>!</b>")
    await chat_input.press("Enter")
    await expect(bob.page.get_by_test_id("chat-message").last).to_have_text("Alice: Hello Bob <b>!</b>")
    await expect(bob.test_id("typing-indicator")).to_be_hidden()
    assert await bob.page.locator("#chat-log b").count() == 0, "chat text must never become markup"
    await expect(alice.page.get_by_test_id("chat-message").last).to_have_text("You: Hello Bob <b>!</b>")
    await expect(chat_input).to_have_value("")

    # Bob answers while Alice has her chat closed: she sees an unread count.
    await alice.page.keyboard.press("Escape")
    await expect(alice.test_id("chat-panel")).to_be_hidden()
    await bob.test_id("chat-input").fill("Hi Alice")
    await bob.test_id("chat-send").click()
    await expect(alice.test_id("toggle-chat")).to_have_attribute("aria-label", "Chat, 1 unread")
    await alice.test_id("toggle-chat").click()
    await expect(alice.page.get_by_test_id("chat-message").last).to_have_text("Bob: Hi Alice")
    await expect(alice.test_id("toggle-chat")).to_have_attribute("aria-label", "Chat")


async def test_camera_off_and_mute_toggle_the_outgoing_tracks(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    assert {k: v["enabled"] for k, v in (await alice.senders()).items()} == {"audio": True, "video": True}

    camera, mic = alice.test_id("toggle-camera"), alice.test_id("toggle-mic")
    await camera.click()
    await expect(camera).to_have_attribute("aria-pressed", "false")
    assert (await alice.senders())["video"]["enabled"] is False
    assert (await alice.senders())["audio"]["enabled"] is True
    # Bob is told over the data channel and shows Alice's avatar instead of black video.
    await expect(bob.page.locator("#remote-cover")).to_be_visible()

    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await expect(mic).to_have_attribute("aria-label", "Microphone off")
    assert (await alice.senders())["audio"]["enabled"] is False
    await expect(bob.page.locator("#remote-muted")).to_be_visible()

    await camera.click()
    await mic.click()
    await expect(camera).to_have_attribute("aria-pressed", "true")
    senders = await alice.senders()
    assert senders["video"]["enabled"] is True and senders["audio"]["enabled"] is True
    await expect(bob.page.locator("#remote-cover")).to_be_hidden()
    await expect(bob.page.locator("#remote-muted")).to_be_hidden()
    # The same tracks throughout: toggles never renegotiate or re-acquire.
    assert all(s["state"] == "live" for s in senders.values())


async def frames_keep_coming(user: User) -> None:
    before = (await user.media_stats() or {}).get("videoFrames", 0)
    await user.wait_media_flowing(frames_above=before + 10)


async def wait_sending(user: User, kind: str, label: str) -> None:
    await user.wait_for(
        "([kind, label]) => window.__lanCall.pc.getSenders()"
        ".some(s => s.track?.kind === kind && s.track.label === label && s.track.readyState === 'live')",
        arg=[kind, label],
    )


async def test_switching_camera_and_microphone_mid_call_keeps_the_call(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    await bob.wait_media_flowing()
    sdp_before = await alice.js("window.__lanCall.pc.localDescription.sdp")
    first = await alice.senders()
    assert first["video"]["label"] == "fake_device_0"

    # Pick a camera by name in the call's settings sheet. (Chromium's fake_device_1 is a
    # depth camera whose frames cannot be encoded, so the test uses fake_device_2.)
    await alice.test_id("toggle-more").click()
    await alice.test_id("call-camera-select").select_option(label="fake_device_2")
    await wait_sending(alice, "video", "fake_device_2")
    await frames_keep_coming(bob)

    mic_select = alice.test_id("call-mic-select")
    labels = await mic_select.locator("option").all_inner_texts()
    other_mic = next(label for label in labels if label != first["audio"]["label"])
    await mic_select.select_option(label=other_mic)
    await wait_sending(alice, "audio", other_mic)
    audio_before = (await bob.media_stats() or {})["audioBytes"]
    await bob.wait_for(
        "async (before) => { const r = await window.__lanCall.pc.getStats(); let b = 0;"
        " r.forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'audio') b += s.bytesReceived; });"
        " return b > before + 1000; }",
        arg=audio_before,
    )

    # The switch-camera button moves on to the next camera (fake_device_0 again).
    await alice.page.keyboard.press("Escape")
    await expect(alice.test_id("more-panel")).to_be_hidden()
    await alice.test_id("switch-camera").click()
    await wait_sending(alice, "video", "fake_device_0")
    await frames_keep_coming(bob)

    # Same call, same session: no renegotiation, no hang-up; the old devices are released.
    assert await alice.js("window.__lanCall.pc.localDescription.sdp") == sdp_before
    assert await alice.call_state() == "connected" and await bob.call_state() == "connected"
    tracks = await alice.js("window.__lanCall.localStream.getTracks().map(t => t.label + ':' + t.readyState)")
    assert sorted(tracks) == sorted([f"{other_mic}:live", "fake_device_0:live"])


async def test_stats_overlay_shows_the_connection(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    await alice.wait_media_flowing()

    await alice.test_id("toggle-more").click()
    await alice.test_id("toggle-stats").click()
    stats = alice.test_id("stats")
    await expect(stats).to_be_visible()
    await expect(stats.locator("[data-stat=route]")).to_have_text(re.compile(r"^host ↔ host \(udp\)$"))
    await expect(stats.locator("[data-stat=codec]")).to_have_text(re.compile(r"^(VP8|VP9|H264|AV1)$"))
    await expect(stats.locator("[data-stat=rtt]")).to_have_text(re.compile(r"^\d+ ms$"))
    await expect(stats.locator("[data-stat=in]")).to_have_text(re.compile(r"(kbit|Mbit)/s$"))
    await expect(stats.locator("[data-stat=video]")).to_have_text(re.compile(r"^\d+×\d+ · \d+ fps$"))
    # The sparkline has been drawn on (some non-transparent pixel).
    await alice.wait_for(
        "() => { const c = document.querySelector('#stats canvas');"
        " return c.width > 0 && c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v); }"
    )
    await alice.test_id("toggle-stats").click()
    await expect(stats).to_be_hidden()


async def test_in_call_screenshots_phone_and_desktop(start_server, new_user, artifacts: Path):
    live = await start_server()
    phone = await new_user(live, "Priya", viewport={"width": 360, "height": 740})
    desktop = await new_user(live, "Dmitri", viewport={"width": 1280, "height": 800})
    await phone.page.screenshot(path=artifacts / "lobby-360x740.png", animations="disabled")
    await desktop.page.screenshot(path=artifacts / "lobby-1280x800.png", animations="disabled")
    await phone.call(desktop)
    await expect(desktop.test_id("incoming-call")).to_be_visible()
    await desktop.page.screenshot(path=artifacts / "incoming-1280x800.png", animations="disabled")
    # Dmitri's device rings, so Priya's screen has moved on from "Calling" (issue 9).
    await expect(phone.test_id("call-status")).to_have_text("Ringing Dmitri…")
    box_while_calling = await phone.test_id("remote-video").bounding_box()
    await phone.page.screenshot(path=artifacts / "calling-360x740.png", animations="disabled")
    await desktop.accept()
    await asyncio.gather(phone.wait_connected(), desktop.wait_connected())
    await asyncio.gather(phone.wait_media_flowing(frames_above=5), desktop.wait_media_flowing(frames_above=5))
    await expect(phone.page.locator("#remote-cover")).to_be_hidden()

    # No layout jump when the video starts: the remote video box kept its place and size.
    assert await phone.test_id("remote-video").bounding_box() == box_while_calling
    for user, width in ((phone, 360), (desktop, 1280)):
        assert await user.js("document.documentElement.scrollWidth") <= width, "horizontal scroll"
        for control in ("toggle-mic", "toggle-camera", "toggle-chat", "hang-up"):
            box = await user.test_id(control).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, control
            assert box["width"] >= 44 and box["height"] >= 44, f"{control} is too small to tap"
    await phone.page.screenshot(path=artifacts / "in-call-360x740.png", animations="disabled")
    await desktop.page.screenshot(path=artifacts / "in-call-1280x800.png", animations="disabled")
    await desktop.test_id("toggle-chat").click()
    await desktop.test_id("chat-input").fill("The view from a desktop")
    await desktop.test_id("chat-input").press("Enter")
    await phone.test_id("toggle-chat").click()
    await expect(phone.page.get_by_test_id("chat-message")).to_have_count(1)
    await phone.page.screenshot(path=artifacts / "in-call-chat-360x740.png", animations="disabled")
    await desktop.page.screenshot(path=artifacts / "in-call-chat-1280x800.png", animations="disabled")
    for name in ("in-call-360x740.png", "in-call-1280x800.png"):
        assert (artifacts / name).stat().st_size > 10_000


async def test_a_second_call_with_the_same_person_starts_clean(start_server, new_user):
    """Each person keeps one peer link across calls: the next call (either way round) gets a
    fresh connection, and what the last call's screen listened to is not heard twice."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await connect_call(alice, bob)
    await bob.test_id("toggle-mic").click()
    await expect(alice.page.locator("#remote-muted")).to_be_visible()
    await alice.js("window.__firstPc = window.__lanCall.pc")
    await bob.test_id("toggle-mic").click()
    await alice.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())

    await connect_call(bob, alice)  # the other way round this time
    assert await alice.js("window.__firstPc.connectionState") == "closed"
    assert await alice.js("window.__lanCall.pc !== window.__firstPc")
    await expect(alice.test_id("call-status")).to_have_text("Connected")
    await expect(alice.page.locator("#remote-muted")).to_be_hidden()
    turns = ((alice, bob, "Once from Alice"), (bob, alice, "Once from Bob"))
    for lines, (sender, receiver, text) in enumerate(turns, start=1):
        await sender.test_id("toggle-chat").click()
        await expect(sender.test_id("chat-input")).to_be_enabled()
        await sender.test_id("chat-input").fill(text)
        await sender.test_id("chat-send").click()
        await expect(receiver.page.get_by_test_id("chat-message").last).to_have_text(f"{sender.name}: {text}")
        await asyncio.sleep(0.3)  # a line heard twice would have arrived by now
        assert await receiver.page.get_by_test_id("chat-message").count() == lines
        assert await sender.page.get_by_test_id("chat-message").count() == lines
        await sender.page.keyboard.press("Escape")
    await bob.test_id("hang-up").click()
    await asyncio.gather(alice.wait_idle(), bob.wait_idle())
