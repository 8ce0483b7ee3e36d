"""Messages outside calls over data links (docs/protocol.md §9): the Message button,
the conversation view, unread badges, delivery and Retry, a reload, a call that
continues the conversation, and the peer data API itself (request, timeout)."""

from __future__ import annotations

import asyncio

from playwright.async_api import Locator, expect

from lancall_peer.peer import PythonPeer
from tests.support.browseruser import User, connect_call


async def open_conversation(user: User, other: User) -> None:
    item = user.page.get_by_test_id("people-list").locator("li").filter(has_text=other.name)
    await item.get_by_role("button", name="Message", exact=True).click()
    await expect(user.test_id("conversation")).to_be_visible()
    await expect(user.test_id("conversation-name")).to_have_text(other.name)


async def say(user: User, text: str) -> None:
    await user.test_id("conversation-input").fill(text)
    await user.test_id("conversation-input").press("Enter")


def lines(user: User) -> Locator:
    return user.test_id("conversation-message")


async def test_message_both_ways_outside_a_call_with_unread_badge(start_server, new_user, artifacts):
    live = await start_server()
    alice = await new_user(live, "Alice", viewport={"width": 360, "height": 740})
    bob = await new_user(live, "Bob")
    await expect(alice.person("Bob")).to_be_visible()
    await expect(bob.person("Alice")).to_be_visible()

    await open_conversation(alice, bob)
    await say(alice, "Hi Bob, see https://example.com/x.")
    await expect(lines(alice)).to_have_count(1)
    await expect(alice.test_id("line-status")).to_have_count(0)  # delivered: no status left
    # Bob was not looking: an unread badge beside Alice, and no call rang.
    bob_item = bob.page.get_by_test_id("people-list").locator("li").filter(has_text="Alice")
    await expect(bob_item.get_by_test_id("unread-badge")).to_have_text("1")
    assert await bob.call_state() is None
    assert await bob.test_id("incoming-call").is_hidden()

    await open_conversation(bob, alice)
    await expect(bob_item.get_by_test_id("unread-badge")).to_be_hidden()
    await expect(lines(bob)).to_have_text(["Alice: Hi Bob, see https://example.com/x."])
    link = lines(bob).first.locator("a")
    assert await link.get_attribute("href") == "https://example.com/x"
    assert await link.get_attribute("rel") == "noopener noreferrer"

    await bob.test_id("conversation-input").fill("Hel")
    await expect(alice.test_id("conversation-typing")).to_have_text("Bob is typing…")
    await say(bob, "Hello Alice")
    await expect(lines(alice)).to_have_text(["You: Hi Bob, see https://example.com/x.", "Bob: Hello Alice"])
    await expect(alice.test_id("conversation-typing")).to_be_hidden()
    await alice.page.screenshot(path=str(artifacts / "conversation-phone.png"))
    await bob.page.screenshot(path=str(artifacts / "conversation-desktop.png"))


async def test_conversation_survives_a_reload_and_continues_into_a_call(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await open_conversation(alice, bob)
    await say(alice, "before the reload")
    await expect(lines(alice)).to_have_count(1)
    await expect(alice.test_id("line-status")).to_have_count(0)

    await bob.page.reload()
    await bob.wait_for("window.__lanCall?.link === 'online' && window.__lanCall.id")
    bob_item = bob.page.get_by_test_id("people-list").locator("li").filter(has_text="Alice")
    await expect(bob_item.get_by_test_id("unread-badge")).to_have_text("1")  # still unread
    await open_conversation(bob, alice)
    await expect(lines(bob)).to_have_text(["Alice: before the reload"])
    await say(bob, "after the reload")
    await expect(lines(alice)).to_have_text(["You: before the reload", "Bob: after the reload"])
    await bob.test_id("conversation-close").click()

    await connect_call(alice, bob)
    await alice.test_id("toggle-chat").click()
    earlier = ["You: before the reload", "Bob: after the reload"]
    await expect(alice.test_id("chat-message")).to_have_text(earlier)
    await bob.test_id("toggle-chat").click()
    await bob.test_id("chat-input").fill("in the call")
    await bob.test_id("chat-input").press("Enter")
    await expect(alice.test_id("chat-message")).to_have_count(3)
    await alice.test_id("hang-up").click()
    await alice.wait_idle()
    await open_conversation(alice, bob)
    await expect(lines(alice)).to_have_text(
        ["You: before the reload", "Bob: after the reload", "Bob: in the call"]
    )


async def test_a_message_to_someone_unreachable_is_not_delivered_and_can_be_retried(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await open_conversation(alice, bob)
    bob_id = await bob.id
    # Bob's app stops answering data links (as a tab whose page froze would). Alice's gives
    # an unanswered link 2 s instead of 10 before it says so (the same rule, sooner).
    await bob.js("() => { window.__lanCall.data.handle = () => {}; }")
    await alice.js("() => { window.__lanCall.data.options.openTimeoutMs = 2000; }")
    await say(alice, "are you there?")
    failed = alice.test_id("line-status")
    await expect(failed).to_contain_text("Not delivered")
    assert await alice.js(f"window.__lanCall.data.peer({bob_id!r}).state") == "idle"
    await bob.js("() => { delete window.__lanCall.data.handle; }")  # the prototype's again
    await alice.test_id("retry-message").click()
    await expect(failed).to_have_count(0)
    await expect(lines(alice)).to_have_count(1)  # the same line, delivered
    await expect(
        bob.page.get_by_test_id("people-list")
        .locator("li")
        .filter(has_text="Alice")
        .get_by_test_id("unread-badge")
    ).to_have_text("1")


REQUEST_JS = """async ([peerId, type, data, timeoutMs]) => {
  try {
    return {ok: await window.__lanCall.data.peer(peerId).request(type, data, {timeoutMs})};
  } catch (error) {
    return {code: error.code, message: error.message};
  }
}"""


async def test_request_round_trip_errors_and_timeout_keep_the_link_up(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    bob_id, alice_id = await bob.id, await alice.id
    for user in (alice, bob):
        await user.js(
            "() => { window.__lanCall.data"
            ".define('test.add', (d) => Array.isArray(d) && d.every(Number.isFinite))"
            ".define('test.never', () => true); }"
        )
    # Alice's app thinks anything goes in test.strict; Bob's checks it.
    await alice.js("() => { window.__lanCall.data.define('test.strict', () => true); }")
    await bob.js("() => { window.__lanCall.data.define('test.strict', (d) => typeof d === 'number'); }")
    # (Wrapped in functions: Playwright calls a function an expression returns, e.g. unsubscribe.)
    await bob.js("() => { window.__lanCall.data.subscribe('test.add', (d) => d.reduce((a, b) => a + b)); }")
    await bob.js("() => { window.__lanCall.data.subscribe('test.never', () => new Promise(() => {})); }")
    await bob.js("() => { window.__lanCall.data.subscribe('test.strict', (d) => d * 2); }")

    assert await alice.js(REQUEST_JS, [bob_id, "ping", {"t": 7}, 5000]) == {"ok": {"t": 7}}
    assert await alice.js(REQUEST_JS, [bob_id, "test.add", [1, 2, 3], 5000]) == {"ok": 6}
    # Bob's side knows whom it came from, and answered without a call or a ring.
    assert await bob.call_state() is None
    assert await bob.js(f"window.__lanCall.data.peer({alice_id!r}).state") == "connected"

    timed_out = await alice.js(REQUEST_JS, [bob_id, "test.never", None, 800])
    assert timed_out["code"] == "timeout" and "Bob didn’t answer" in timed_out["message"]
    # Malformed traffic on the service channel is counted and ignored.
    await alice.js(
        "(id) => { const dc = window.__lanCall.data.peer(id).channels.channels.get('chat');"
        " dc.send('{not json'); dc.send(JSON.stringify({type: 'request', data: {id: 5}}));"
        " dc.send(JSON.stringify({type: 'request', data: {id: 'x1', type: 'nobody.answers'}})); }",
        bob_id,
    )
    await bob.wait_for(f"window.__lanCall.data.peer({alice_id!r}).malformed >= 2")
    assert await alice.js(REQUEST_JS, [bob_id, "test.strict", 4, 5000]) == {"ok": 8}
    malformed = await alice.js(REQUEST_JS, [bob_id, "test.strict", "four", 5000])
    assert malformed["code"] == "bad-request" and "malformed" in malformed["message"]
    await alice.js("() => { window.__lanCall.data.define('test.only-here', () => true); }")
    unknown = await alice.js(REQUEST_JS, [bob_id, "test.only-here", None, 5000])
    assert unknown["code"] == "unknown-type"
    assert unknown["message"] == "This app doesn’t answer “test.only-here” requests."
    # Still the same link, still answering.
    assert await alice.js(REQUEST_JS, [bob_id, "ping", {"t": 8}, 5000]) == {"ok": {"t": 8}}
    assert await alice.js(f"window.__lanCall.data.peer({bob_id!r}).state") == "connected"


async def test_named_channel_opens_on_demand_and_data_links_close_when_idle(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    bob_id, alice_id = await bob.id, await alice.id
    await bob.js(
        """(id) => { window.__got = []; window.__lanCall.data.peer(id).addEventListener('channel', (e) => {
             const {label, channel} = e.detail;
             channel.addEventListener('message', (m) => window.__got.push([label, m.data])); }); }""",
        alice_id,
    )
    await alice.js(
        """async (id) => { const dc = await window.__lanCall.data.peer(id).channel('file:1', {ordered: true});
             dc.send('chunk'); }""",
        bob_id,
    )
    await bob.wait_for("window.__got.length === 1")
    assert await bob.js("window.__got") == [["file:1", "chunk"]]
    # The idle close, sped up: with the named channel open the link stays; closed, it goes.
    await alice.js("(id) => { const l = window.__lanCall.data.peer(id); l.idleMs = 300; l.touch(); }", bob_id)
    await asyncio.sleep(0.8)
    assert await alice.js(f"window.__lanCall.data.peer({bob_id!r}).state") == "connected"
    await alice.js(f"window.__lanCall.data.peer({bob_id!r}).channels.channels.get('file:1').close()")
    await bob.wait_for(f"window.__lanCall.data.peer({alice_id!r}).state === 'idle'")
    # The next use opens a new link transparently.
    assert await alice.js(REQUEST_JS, [bob_id, "ping", {"t": 1}, 5000]) == {"ok": {"t": 1}}


async def test_a_python_peer_and_a_browser_message_each_other(start_server, new_user, client_ssl):
    live = await start_server()
    alice = await new_user(live, "Alice")
    async with PythonPeer(live.url, "Robot", ssl_context=client_ssl, video=False) as robot:
        alice_id = await robot.wait_for_peer("Alice")
        assert await robot.data.peer(alice_id).send_message("beep from Python")
        robot_item = alice.page.get_by_test_id("people-list").locator("li").filter(has_text="Robot")
        await expect(robot_item.get_by_test_id("unread-badge")).to_have_text("1")
        await robot_item.get_by_role("button", name="Message", exact=True).click()
        await expect(lines(alice)).to_have_text(["Robot: beep from Python"])
        await say(alice, "hello Robot")
        line = await robot.data.peer(alice_id).wait_for_line(0)
        assert line["text"] == "hello Robot"
        await expect(alice.test_id("line-status")).to_have_count(0)  # delivered
        assert not robot.calls and await alice.call_state() is None
