"""Missed calls (issue 9, Users 8): a busy or absent person keeps a trace of who called,
with a badge, "Call back" and "Clear", stored on the device; in a background tab an
incoming call shows a system notification, and permission is asked only after the
person's own first call action."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Page, expect

from tests.support.browseruser import connect_call
from tests.support.polling import eventually

# Headless Chromium shows no system notifications and its tabs are never hidden, so the
# page gets a recording Notification and a switch for document.hidden.
FAKE_NOTIFICATIONS = """
(() => {
  window.__notes = [];
  window.__permissionAsks = 0;
  class RecordingNotification {
    static permission = 'default';
    static requestPermission() {
      window.__permissionAsks += 1;
      RecordingNotification.permission = 'granted';
      return Promise.resolve('granted');
    }
    constructor(title, options) {
      Object.assign(this, { title, options, closed: false });
      window.__notes.push(this);
    }
    close() { this.closed = true; }
  }
  window.Notification = RecordingNotification;
  Object.defineProperty(Document.prototype, 'hidden', { get: () => window.__hidden === true });
})();
"""


async def fake_notifications(page: Page) -> None:
    await page.add_init_script(FAKE_NOTIFICATIONS)


async def test_busy_call_is_kept_with_a_badge_call_back_and_clear(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await connect_call(alice, bob)

    await carol.call(bob)
    await bob.test_id("waiting-decline").click()  # call waiting (issue 11): Bob says he is busy
    await expect(carol.notices().last).to_have_text("Bob is in another call")
    await expect(bob.test_id("missed-badge")).to_have_text("1 missed")
    await bob.test_id("hang-up").click()
    await bob.wait_idle()

    entry = bob.test_id("missed-call")
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text("Carol")
    await expect(entry).to_contain_text(re.compile(r"\d:\d\d.* · while you were in a call"))

    # Kept on this device: still there after a reload.
    await bob.page.reload()
    await bob.wait_for("window.__lanCall?.link === 'online'")
    await expect(bob.test_id("missed-badge")).to_have_text("1 missed")
    await bob.test_id("missed-badge").click()
    await expect(bob.test_id("missed-badge")).to_be_hidden()
    await expect(bob.page.locator("#missed-title")).to_be_focused()

    await entry.get_by_role("button", name="Call Carol back").click()
    await expect(carol.test_id("incoming-call")).to_be_visible()
    await carol.test_id("decline-call").click()
    await bob.wait_idle()

    await bob.test_id("missed-clear").click()
    await expect(bob.test_id("missed-calls")).to_be_hidden()
    assert await bob.js("localStorage.getItem('lanCall.missed')") == "[]"


async def test_call_cancelled_or_rung_out_before_answering_is_missed(start_server, new_user):
    live = await start_server(ring_timeout=2)
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")

    await alice.call(bob)  # Alice gives up
    await expect(bob.test_id("incoming-call")).to_be_visible()
    await alice.test_id("hang-up").click()
    await bob.wait_idle()
    await alice.call(bob)  # nobody answers
    await bob.wait_idle(timeout=10)
    await expect(bob.test_id("missed-call")).to_have_count(2)
    await expect(bob.test_id("missed-badge")).to_have_text("2 missed")

    await alice.call(bob)  # declining on purpose is not "missed"
    await bob.test_id("decline-call").click()
    await bob.wait_idle()
    await expect(bob.test_id("missed-call")).to_have_count(2)


async def test_background_tab_gets_a_notification_and_permission_waits_for_a_call(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob", before_load=fake_notifications)

    # Never asked on load; offered as a control instead.
    assert await bob.js("window.__permissionAsks") == 0
    await expect(bob.test_id("notify-offer")).to_be_visible()

    # Bob accepts a call: his first own call action asks, once.
    await connect_call(alice, bob)
    assert await bob.js("window.__permissionAsks") == 1
    await expect(bob.test_id("notify-offer")).to_be_hidden()
    await alice.test_id("hang-up").click()
    await bob.wait_idle()

    # Bob's tab goes to the background; Alice calls.
    await bob.js("window.__hidden = true")
    await alice.call(bob)
    note = await bob.wait_for("window.__notes.find((n) => !n.closed)?.title")
    assert note == "Alice is calling"
    assert await bob.js("window.__notes.at(-1).options.requireInteraction") is True
    # Clicking it brings the tab forward (and closes it).
    await bob.js("window.__notes.at(-1).onclick()")
    assert await bob.js("window.__notes.at(-1).closed") is True

    # She gives up: the ring's notification becomes a missed-call one.
    await alice.test_id("hang-up").click()
    await bob.wait_idle()
    await bob.wait_for("window.__notes.at(-1).title === 'Missed call from Alice'")

    # In the foreground, no notification: the page itself rings.
    await bob.js("window.__hidden = false")
    count = await bob.js("window.__notes.length")
    await alice.call(bob)
    await expect(bob.test_id("incoming-call")).to_be_visible()
    await asyncio.sleep(0.3)
    assert await bob.js("window.__notes.length") == count
    assert await bob.js("window.__permissionAsks") == 1


# Android's Chrome (and an iPhone app on the Home Screen): `new Notification` throws, only
# the service worker may show one. Its registration's notifications are recorded.
WORKER_ONLY_NOTIFICATIONS = """
(() => {
  window.__workerNotes = [];
  const Recording = window.Notification;
  window.Notification = class extends Recording {
    constructor() { throw new TypeError("Failed to construct 'Notification': Illegal constructor."); }
  };
  // permission and requestPermission: the recording class's, inherited.
  const proto = ServiceWorkerRegistration.prototype;
  proto.showNotification = function (title, options) {
    // As browsers do: a notification replaces the open one of the same tag.
    for (const n of window.__workerNotes) if (n.options.tag === options.tag) n.closed = true;
    window.__workerNotes.push({ title, options, closed: false });
    return Promise.resolve();
  };
  proto.getNotifications = function ({ tag } = {}) {
    return Promise.resolve(window.__workerNotes
      .filter((n) => !n.closed && (!tag || n.options.tag === tag))
      .map((n) => ({ close: () => { n.closed = true; } })));
  };
})();
"""


async def test_where_only_the_service_worker_may_notify_it_does(start_server, new_user, trusting_browser):
    """Android's Chrome refuses `new Notification`: the ring's notification comes from the
    service worker instead, and the missed call replaces it there."""
    live = await start_server()
    alice = await new_user(live, "Alice")

    async def worker_only(page: Page) -> None:
        await fake_notifications(page)
        await page.add_init_script(WORKER_ONLY_NOTIFICATIONS)

    bob = await new_user(live, "Bob", before_load=worker_only, browser=trusting_browser)
    registered = "async () => !!(await navigator.serviceWorker.getRegistration())"
    await eventually(lambda: bob.js(registered), within=10, what="Bob's service worker registered")
    await bob.test_id("notify-enable").click()
    await bob.js("window.__hidden = true")
    await alice.call(bob)
    note = await bob.wait_for("window.__workerNotes.find((n) => !n.closed)?.title")
    assert note == "Alice is calling"
    assert await bob.js("window.__notes.length") == 0
    await alice.test_id("hang-up").click()
    await bob.wait_idle()
    await bob.wait_for("window.__workerNotes.at(-1).title === 'Missed call from Alice'")
    # One at a time: the missed call's replaced the ring's.
    assert await bob.js("window.__workerNotes.filter((n) => !n.closed).length") == 1


async def test_notify_me_control_asks_for_permission(start_server, new_user):
    live = await start_server()
    bob = await new_user(live, "Bob", before_load=fake_notifications)
    await bob.test_id("notify-enable").click()
    assert await bob.js("window.__permissionAsks") == 1
    await expect(bob.test_id("notify-offer")).to_be_hidden()


async def test_two_callers_of_the_same_name_are_told_apart_in_missed_calls(start_server, new_user):
    """Issue 19 (13): two "Ann"s who called show with their look-alike tags, as in the list."""
    live = await start_server()
    bob = await new_user(live, "Bob")
    first = await new_user(live, "Ann")
    second = await new_user(live, "Ann")
    for ann in (first, second):
        await ann.call(bob)
        await expect(bob.test_id("incoming-call")).to_be_visible()
        await ann.test_id("hang-up").click()  # gives up: a missed call at Bob's
        await bob.wait_idle()
    entries = bob.test_id("missed-call")
    await expect(entries).to_have_count(2)
    tags = [await entries.nth(i).locator(".tag").inner_text() for i in range(2)]
    assert all(re.fullmatch(r"#[0-9A-Z]{4}", tag) for tag in tags) and tags[0] != tags[1], tags
