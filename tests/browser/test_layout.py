"""Layout at phone (360x740) and desktop (1280x800) sizes, measured with bounding boxes:
long names, toasts, the lobby grid, and fitting the remote video. Screenshots of each
state go to test-artifacts/ (layout-*.png)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from playwright.async_api import Locator, expect

from tests.support.browseruser import User, connect_call

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
# 64 characters each, the longest name the server takes.
LONG_PRIYA = "Priya Venkataraman-Subramanian of the Eastern Ghats and the Nilgiri Hills"[:64]
LONG_DMITRI = "Dmitri Alexandrovich Konstantinopolsky-Rimsky from Nizhny Novgorod"[:64]

SHOW_NOTICE = """async (text) => {
  const src = document.querySelector('script[type=module]').src;
  (await import(src.replace('app.js', 'core/dom.js'))).showNotice(text);
}"""


async def box(locator: Locator) -> dict[str, float]:
    found = await locator.bounding_box()
    assert found, f"{locator} is not laid out"
    return found


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def within(inner: dict[str, float], width: int, height: int) -> bool:
    return (
        inner["x"] >= 0
        and inner["y"] >= 0
        and inner["x"] + inner["width"] <= width
        and inner["y"] + inner["height"] <= height
    )


async def shot(user: User, artifacts: Path, name: str) -> None:
    size = user.page.viewport_size or {}
    await user.page.screenshot(
        path=artifacts / f"layout-{name}-{size.get('width')}x{size.get('height')}.png", animations="disabled"
    )


async def object_fit(user: User) -> Any:
    return await user.js("getComputedStyle(document.getElementById('remote-video')).objectFit")


async def assert_notice_fits(user: User, size: dict[str, int]) -> dict[str, float]:
    # Measured where it comes to rest: at the bottom, its rise animation starts it lower.
    await user.notices().last.evaluate("(el) => Promise.all(el.getAnimations().map((a) => a.finished))")
    notice = await box(user.notices().last)
    assert within(notice, size["width"], size["height"]), f"toast cut off: {notice}"
    assert await user.js("document.documentElement.scrollWidth") <= size["width"]
    return notice


async def test_long_names_toasts_and_video_fit_on_phone_and_desktop(start_server, new_user, artifacts: Path):
    live = await start_server()
    phone = await new_user(live, LONG_PRIYA, viewport=PHONE)
    desktop = await new_user(live, LONG_DMITRI, viewport=DESKTOP)
    await expect(phone.person(LONG_DMITRI)).to_have_count(1)
    await shot(phone, artifacts, "lobby")
    await shot(desktop, artifacts, "lobby")

    # A long name in a list row shows whole, on several lines (issue 19, 1), the full name
    # also as tooltip.
    row_name = phone.person(LONG_DMITRI).locator(".name")
    await expect(row_name).to_have_attribute("title", LONG_DMITRI)
    assert await row_name.locator(".text").evaluate("(el) => el.scrollWidth <= el.clientWidth")

    # Incoming on the phone, declined: the phone's toast wraps inside a 360 px screen.
    await desktop.call(phone)
    await expect(phone.test_id("incoming-call")).to_be_visible()
    await phone.js("Promise.all(document.getElementById('incoming').getAnimations().map((a) => a.finished))")
    assert within(await box(phone.test_id("incoming-call")), **PHONE)
    await shot(phone, artifacts, "incoming")
    await phone.test_id("decline-call").click()
    await expect(phone.notices()).to_have_count(1)
    notice = await assert_notice_fits(phone, PHONE)
    assert notice["height"] > 50, "a long toast should wrap onto several lines"
    # Not over the lobby's heading (issue 19, 16: toasts covered headings): at the bottom.
    assert not overlaps(notice, await box(phone.page.locator("#people-title"))), (
        "the toast covers the heading"
    )
    assert notice["y"] > PHONE["height"] / 2, notice
    await shot(phone, artifacts, "toast")
    await expect(desktop.notices()).to_have_count(1)
    await assert_notice_fits(desktop, DESKTOP)
    await shot(desktop, artifacts, "toast")
    await desktop.wait_idle()

    # The phone calls back at once: the last call's toast does not carry into this one.
    await phone.call(desktop)
    await expect(phone.test_id("call-screen")).to_be_visible()
    await expect(phone.notices()).to_have_count(0)
    await expect(desktop.test_id("incoming-call")).to_be_visible()
    await expect(desktop.notices()).to_have_count(0)
    await shot(desktop, artifacts, "incoming")
    await desktop.accept()
    await asyncio.gather(phone.wait_connected(), desktop.wait_connected())
    await asyncio.gather(phone.wait_media_flowing(frames_above=5), desktop.wait_media_flowing(frames_above=5))
    await expect(phone.page.locator("#remote-cover")).to_be_hidden()

    for user, size, other in ((phone, PHONE, LONG_DMITRI), (desktop, DESKTOP, LONG_PRIYA)):
        name = user.test_id("call-name")
        await expect(name).to_have_attribute("title", other)
        name_box, line_box = await box(name), await box(user.page.locator(".call-line"))
        assert name_box["height"] < 40, f"the name wraps: {name_box}"
        assert within(name_box, **size)
        pip = await box(user.page.locator("#pip"))
        assert not overlaps(name_box, pip) and not overlaps(line_box, pip)
        assert not overlaps(name_box, await box(user.test_id("video-fit")))

        # A toast during the call sits clear of the name, the status, your picture and the controls.
        await user.js(SHOW_NOTICE, f"A message during the call about {other}, long enough to wrap on a phone")
        notice = await assert_notice_fits(user, size)
        for part in (name_box, line_box, pip, await box(user.page.locator(".controls .round").first)):
            assert not overlaps(notice, part), f"toast {notice} covers {part}"
        await shot(user, artifacts, "in-call-toast")
        await user.js("document.getElementById('notices').replaceChildren()")
        await shot(user, artifacts, "in-call")

    # A landscape camera on an upright phone fills the screen; the desktop shows it whole.
    assert await object_fit(phone) == "cover"
    assert await object_fit(desktop) == "contain"
    fit = phone.test_id("video-fit")
    await expect(fit).to_have_attribute("aria-pressed", "true")
    await fit.click()
    assert await object_fit(phone) == "contain"
    await expect(fit).to_have_attribute("aria-label", "Fill the screen")
    await expect(fit).to_have_attribute("title", "Fill the screen")
    await shot(phone, artifacts, "in-call-fit")

    # The choice is remembered for the next call; a double-tap on the picture switches back.
    await phone.test_id("hang-up").click()
    await asyncio.gather(phone.wait_idle(), desktop.wait_idle())
    await phone.call(desktop)
    await desktop.accept()
    await asyncio.gather(phone.wait_connected(), desktop.wait_connected())
    await expect(phone.page.locator("#remote-cover")).to_be_hidden()
    assert await object_fit(phone) == "contain"
    await phone.page.locator("#remote-video").dblclick()
    assert await object_fit(phone) == "cover"
    assert await phone.js("localStorage.getItem('lanCall.fit')") == "fill"


async def test_desktop_lobby_leaves_no_empty_grid(start_server, new_user, artifacts: Path):
    live = await start_server()
    desktop = await new_user(live, "Dmitri", viewport=DESKTOP)
    await new_user(live, "Priya", viewport=PHONE)
    await expect(desktop.page.get_by_test_id("person")).to_have_count(1)
    me, people, invite = [await box(desktop.page.locator(f".card.{c}")) for c in ("me", "people", "invite")]
    # The people card runs as far down as its neighbours: no bare grid under it.
    bottom = max(me["y"] + me["height"], invite["y"] + invite["height"])
    assert people["y"] + people["height"] >= bottom - 1, (people, me, invite)
    # The cards use the width of the window (small margins only).
    right = max(c["x"] + c["width"] for c in (me, people, invite))
    left = min(c["x"] for c in (me, people, invite))
    assert left <= 40 and right >= DESKTOP["width"] - 40
    assert people["width"] >= 400
    await shot(desktop, artifacts, "lobby-grid")


PHONE_390 = {"width": 390, "height": 844}
FIVE = ["Christopher", "Grace Hopper-Lovelace", "Ann", "Ann", "Bartholomew Featherstonehaugh"]


async def test_five_names_show_whole_at_phone_and_desktop_sizes(start_server, new_user, artifacts: Path):
    """Issue 19 (1): five people on a 360x740 phone got ~58 px per name beside the call,
    message and file buttons ("Chr…", "Gra…"), and two "Ann"s read "A #XA8C". Each name and
    look-alike tag now shows whole, inside its row, clear of the buttons."""
    live = await start_server()
    others = [await new_user(live, name) for name in FIVE]
    ids = [await user.id for user in others]
    for size in (PHONE, PHONE_390, DESKTOP):
        viewer = await new_user(live, f"Viewer {size['width']}", viewport=size)
        for index, name in enumerate(FIVE):
            row = viewer.page.locator("#people li").filter(
                has=viewer.page.locator(f'[data-peer-id="{ids[index]}"]')
            )
            await expect(row).to_have_count(1)
            label = row.locator(".name")
            text = label.locator(".text")
            assert await text.inner_text() == name
            assert await text.evaluate("(el) => el.scrollWidth <= el.clientWidth"), f"{name} cut at {size}"
            name_box = await box(label)
            assert within(name_box, size["width"], 100_000), f"{name} outside the screen at {size}"
            if name == "Ann":
                tag = await box(label.locator(".tag"))
                assert tag["x"] + tag["width"] <= name_box["x"] + name_box["width"] + 1
            for action in ("message-person", "send-files"):
                button = await box(row.get_by_test_id(action))
                assert not overlaps(button, name_box), f"{action} covers {name} at {size}"
        await viewer.page.locator("#people").screenshot(
            path=artifacts / f"layout-five-names-{size['width']}x{size['height']}.png"
        )
        await viewer.page.close()


HIT = """(el) => { const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
  return !!hit && el.contains(hit); }"""


async def test_hang_up_stays_reachable_with_the_chat_open_on_phones(start_server, new_user, artifacts: Path):
    """Issue 19 (6): on a 390x844 phone the open chat covered Hang up, and its Send button
    took the tap. The chat now opens above the controls; both stay usable."""
    live = await start_server()
    desk = await new_user(live, "Desk")
    for size in (PHONE, PHONE_390):
        phone = await new_user(live, f"Phone {size['width']}", viewport=size)
        await connect_call(phone, desk)
        await phone.test_id("toggle-chat").click()
        await expect(phone.test_id("chat-panel")).to_be_visible()
        for control in ("hang-up", "toggle-chat", "chat-input"):
            element = phone.test_id(control)
            assert await element.evaluate(HIT), f"{control} is covered at {size}"
        assert not overlaps(await box(phone.test_id("chat-panel")), await box(phone.test_id("hang-up")))
        await shot(phone, artifacts, "chat-open")
        await phone.test_id("hang-up").click()
        await phone.wait_idle()
        await desk.wait_idle()
        await phone.page.close()
