"""Group calls between three browser tabs (issue 11, docs/protocol.md §8): adding a third
person, leaving while the others carry on, call waiting, declining an invitation, a full
call, a server restart mid-call, and the grid at phone and desktop sizes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from playwright.async_api import expect

from tests.support.browseruser import TIMEOUT, User, connect_call

# Everyone this tab is linked with, with the video frames it decoded from each.
LINKS_JS = "() => window.__lanCall.links.map((l) => [l.name, l.state, l.framesDecoded, l.bytesReceived])"


async def wait_links(user: User, names: set[str], *, frames_above: int = 0, timeout: float = TIMEOUT) -> dict:
    """Until `user` is connected to exactly `names` and decodes video from each of them."""
    deadline = time.monotonic() + timeout
    links: list = []
    while time.monotonic() < deadline:
        links = await user.js(LINKS_JS)
        by_name = {name: (state, frames) for name, state, frames, _ in links}
        if set(by_name) == names and all(
            state == "connected" and frames > frames_above for state, frames in by_name.values()
        ):
            return {name: frames for name, (_, frames) in by_name.items()}
        await asyncio.sleep(0.2)
    raise AssertionError(f"{user.name}: links {links}, wanted {sorted(names)} connected and decoding")


async def members(user: User) -> set[str]:
    call = await user.js("window.__lanCall.call")
    return set(call["members"]) if call else set()


async def add(inviter: User, invitee: User) -> None:
    await inviter.page.get_by_role("button", name="Add people").click()
    await inviter.test_id("add-person").filter(has_text=invitee.name).click()


async def three_in_a_call(alice: User, bob: User, carol: User) -> None:
    """Alice calls Bob, then adds Carol; everyone decodes video from everyone."""
    a, b, c = alice.name, bob.name, carol.name
    await connect_call(alice, bob)
    await alice.wait_for("window.__lanCall.call !== null")
    await add(alice, carol)
    await expect(carol.test_id("incoming-call")).to_be_visible()
    await carol.accept()
    await asyncio.gather(wait_links(alice, {b, c}), wait_links(bob, {a, c}), wait_links(carol, {a, b}))
    await alice.page.keyboard.press("Escape")
    await expect(alice.test_id("add-people-panel")).to_be_hidden()


async def test_adding_a_third_person_everyone_sees_everyone(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await connect_call(alice, bob)
    await alice.wait_for("window.__lanCall.call !== null")
    # Carol's list shows Alice and Bob in a call.
    await expect(carol.person("Alice").get_by_test_id("person-in-call")).to_be_visible()
    await expect(carol.person("Bob").get_by_test_id("person-in-call")).to_be_visible()

    await carol.test_id("name-input").focus()
    await add(alice, carol)
    await expect(alice.test_id("add-person").filter(has_text="Carol")).to_contain_text("Ringing…")
    await expect(carol.test_id("incoming-call")).to_be_visible()
    await expect(carol.test_id("incoming-announcement")).to_have_text(
        # The inviter named once (issue 19, 14).
        "Alice invites you to a call with Bob. Press Tab to answer or decline."
    )
    # Announced, not focused: a key meant for the name box must not answer.
    await expect(carol.test_id("name-input")).to_be_focused()
    await carol.accept()

    await asyncio.gather(
        wait_links(alice, {"Bob", "Carol"}),
        wait_links(bob, {"Alice", "Carol"}),
        wait_links(carol, {"Alice", "Bob"}),
    )
    ids = {await u.id for u in (alice, bob, carol)}
    call_ids = set()
    for user in (alice, bob, carol):
        assert await members(user) == ids
        call_ids.add((await user.js("window.__lanCall.call"))["id"])
        await expect(user.test_id("tile")).to_have_count(2)
        await expect(user.test_id("remote-video")).to_be_hidden()
    assert len(call_ids) == 1
    await expect(alice.test_id("tile-name")).to_have_text(["Bob", "Carol"])
    await expect(alice.test_id("call-name")).to_have_text("Bob and Carol")

    # Mesh bandwidth: with two others, each video sender is held to the 2-member budget.
    encodings = await alice.js(
        "() => window.__lanCall.pc.getSenders().filter((s) => s.track?.kind === 'video')"
        ".map((s) => s.getParameters().encodings[0].maxBitrate)"
    )
    assert encodings == [800_000]

    # Chat goes to everyone, with the sender's name.
    await bob.test_id("toggle-chat").click()
    await bob.test_id("chat-input").fill("hello all")
    await bob.test_id("chat-input").press("Enter")
    for user in (alice, carol):
        await user.test_id("toggle-chat").click()
        await expect(user.test_id("chat-message").last).to_have_text("Bobhello all")
        await user.test_id("chat-input").fill("typing…")
    await expect(bob.test_id("typing-indicator")).to_have_text("Alice and Carol are typing…")

    # Tap a tile: that person large; tap again: back to the grid.
    await alice.test_id("toggle-chat").click()
    await alice.test_id("tile-focus").first.click()
    await expect(alice.test_id("tile").filter(has_text="Carol")).to_be_hidden()
    await alice.test_id("tile-focus").first.click()
    await expect(alice.test_id("tile").filter(has_text="Carol")).to_be_visible()

    # Carol turns her camera off: the others see it on her tile only.
    await carol.test_id("toggle-chat").click()
    await carol.test_id("toggle-camera").click()
    for user in (alice, bob):
        tile = user.test_id("tile").filter(has_text="Carol")
        await expect(tile.get_by_test_id("tile-camera-off")).to_be_visible()
        other = user.test_id("tile").filter(has_not_text="Carol")
        await expect(other.get_by_test_id("tile-camera-off")).to_be_hidden()


async def test_one_leaves_and_the_other_two_carry_on(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await three_in_a_call(alice, bob, carol)
    ids = {u.name: await u.id for u in (alice, bob, carol)}

    await expect(alice.page.get_by_role("button", name="Leave call")).to_be_visible()
    await alice.test_id("hang-up").click()
    await alice.wait_idle()
    await expect(alice.notices().last).to_have_text("You left the call")
    for user in (bob, carol):
        await expect(user.notices().last).to_have_text("Alice left the call")
        await expect(user.test_id("tile")).to_have_count(1)
    frames = await asyncio.gather(wait_links(bob, {"Carol"}), wait_links(carol, {"Bob"}))
    # The last two carry on as a normal call: the one large picture again.
    for user, other in ((bob, "Carol"), (carol, "Bob")):
        assert await members(user) == {ids["Bob"], ids["Carol"]}
        await expect(user.test_id("remote-video")).to_be_visible()
        await expect(user.test_id("call-name")).to_have_text(other)
    await asyncio.gather(
        wait_links(bob, {"Carol"}, frames_above=frames[0]["Carol"] + 10),
        wait_links(carol, {"Bob"}, frames_above=frames[1]["Bob"] + 10),
    )
    await expect(alice.person("Bob").get_by_test_id("person-in-call")).to_be_visible()

    await bob.test_id("hang-up").click()
    await asyncio.gather(bob.wait_idle(), carol.wait_idle())
    await expect(carol.notices().last).to_contain_text("Bob ended the call")


async def test_call_waiting_add_to_this_call(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await connect_call(alice, bob)
    await bob.wait_for("window.__lanCall.call !== null")

    await carol.call(bob)
    await expect(bob.test_id("call-waiting")).to_be_visible()
    await expect(bob.test_id("waiting-announcement")).to_contain_text("Carol is calling you")
    await expect(bob.test_id("waiting-add")).not_to_be_focused()
    await expect(carol.test_id("call-status")).to_have_text("Ringing Bob…")
    assert await bob.call_state() == "connected"

    await bob.test_id("waiting-add").click()
    await expect(bob.test_id("call-waiting")).to_be_hidden()
    await asyncio.gather(
        wait_links(alice, {"Bob", "Carol"}),
        wait_links(bob, {"Alice", "Carol"}),
        wait_links(carol, {"Alice", "Bob"}),
    )
    # Carol's own attempt ended quietly: no "call ended" for anyone.
    for user in (alice, bob, carol):
        await expect(user.notices()).to_have_count(0)
        assert len(await members(user)) == 3


async def test_call_waiting_decline_tells_the_caller_busy(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await connect_call(alice, bob)
    await bob.wait_for("window.__lanCall.call !== null")

    await carol.call(bob)
    await expect(bob.test_id("call-waiting")).to_be_visible()
    await bob.test_id("waiting-decline").click()
    await carol.wait_idle()
    await expect(carol.notices().last).to_have_text("Bob is in another call")
    await expect(bob.test_id("call-waiting")).to_be_hidden()
    assert await bob.call_state() == "connected" and await alice.call_state() == "connected"
    await wait_links(bob, {"Alice"})


async def test_declining_an_invitation(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await connect_call(alice, bob)
    await alice.wait_for("window.__lanCall.call !== null")

    await add(alice, carol)
    await expect(carol.test_id("incoming-what")).to_have_text("invites you to a call with Bob")
    await carol.test_id("decline-call").click()
    await expect(carol.test_id("incoming-call")).to_be_hidden()
    await expect(alice.notices().last).to_have_text("Carol declined to join")
    # Carol can be asked again; the call between Alice and Bob went on untouched.
    await expect(alice.test_id("add-person").filter(has_text="Carol")).to_be_enabled()
    assert await carol.call_state() is None
    await wait_links(alice, {"Bob"})
    await wait_links(bob, {"Alice"})


async def test_a_full_call_refuses_the_next_person(start_server, new_user):
    live = await start_server(max_call_size=3)
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await connect_call(alice, bob)
    await alice.wait_for("window.__lanCall.call !== null")
    await add(alice, carol)  # the third place is taken by the invitation
    await expect(carol.test_id("incoming-call")).to_be_visible()

    # Bob tries to add Carol too: two members and one invitation fill a call of three.
    await bob.page.get_by_role("button", name="Add people").click()
    dave = await new_user(live, "Dave")
    await bob.test_id("add-person").filter(has_text="Dave").click()
    await expect(bob.notices().last).to_have_text("This call is full")
    await expect(dave.test_id("incoming-call")).to_be_hidden()
    await carol.accept()
    await wait_links(carol, {"Alice", "Bob"})

    # Dave calls Alice: the call is full, so he hears so at once (issue 19, 11: it said
    # "in another call") and Alice is not asked.
    await dave.call(alice)
    await expect(dave.notices().last).to_have_text("Alice is in a call that is full")
    await expect(alice.test_id("call-waiting")).to_be_hidden()
    # Add people says the call is full before anyone tries, and offers nobody.
    await alice.page.get_by_role("button", name="Add people").click()
    await expect(alice.test_id("add-people-full")).to_have_text(
        "This call is full: 3 people, invitations included. Cancel an invitation to add someone else."
    )
    await expect(alice.test_id("add-person").filter(has_text="Dave")).to_have_attribute(
        "aria-disabled", "true"
    )
    await alice.test_id("add-person").filter(has_text="Dave").dispatch_event("click")  # a tap does nothing
    await expect(alice.test_id("add-person").filter(has_text="Dave")).not_to_contain_text("Ringing")
    await expect(dave.test_id("incoming-call")).to_be_hidden()


async def test_server_restart_mid_call_keeps_media_and_membership(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    carol = await new_user(live, "Carol")
    await three_in_a_call(alice, bob, carol)
    calls = {u.name: await u.js("window.__lanCall.call") for u in (alice, bob, carol)}

    await live.restart()
    for user in (alice, bob, carol):
        await user.wait_for("window.__lanCall.link !== 'online'", timeout=5)
    for user in (alice, bob, carol):
        await user.wait_for("window.__lanCall.link === 'online'", timeout=10)

    # Media never went through the server: every link kept decoding, the call kept its id.
    before = {u.name: await wait_links(u, {n for n in calls if n != u.name}) for u in (alice, bob, carol)}
    for user in (alice, bob, carol):
        others = {n for n in calls if n != user.name}
        await wait_links(user, others, frames_above=min(before[user.name].values()) + 10)
        assert await user.js("window.__lanCall.call") == calls[user.name]
        await expect(user.test_id("tile")).to_have_count(2)

    # Leaving still reaches the others, who carry on.
    await carol.test_id("hang-up").click()
    await carol.wait_idle()
    await asyncio.gather(wait_links(alice, {"Bob"}), wait_links(bob, {"Alice"}))


async def test_group_call_screenshots(start_server, new_user, artifacts: Path):
    live = await start_server()
    alice = await new_user(live, "Alice", viewport={"width": 360, "height": 740})
    bob = await new_user(live, "Bob with a rather long name for a tile")
    carol = await new_user(live, "Carol")
    await three_in_a_call(alice, bob, carol)
    await carol.test_id("toggle-mic").click()
    for width, height, name in ((360, 740, "phone"), (740, 360, "phone-landscape"), (1280, 800, "desktop")):
        await alice.page.set_viewport_size({"width": width, "height": height})
        await expect(
            alice.test_id("tile").filter(has_text="Carol").get_by_test_id("tile-mic-off")
        ).to_be_visible()
        for tile in await alice.test_id("tile").all():
            box = await tile.bounding_box()
            assert box and box["width"] >= 100 and box["height"] >= 80, f"{name}: tile {box}"
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1
            assert box["y"] >= 0 and box["y"] + box["height"] <= height + 1
        self_view = await alice.test_id("self-view").bounding_box()
        assert self_view and self_view["width"] > 40
        # A balanced grid (issue 19, 8): your picture is one more tile of the same size, it
        # covers nobody's, and tiles are 16:9 on a landscape screen, portrait on an upright phone.
        boxes = [await tile.bounding_box() for tile in await alice.test_id("tile").all()]
        mine = await alice.page.locator("#pip").bounding_box()
        assert mine is not None
        for index, one in enumerate([*boxes, mine]):
            assert one is not None
            assert abs(one["width"] - mine["width"]) < 2 and abs(one["height"] - mine["height"]) < 2, (
                name,
                one,
                mine,
            )
            for other in [*boxes, mine][index + 1 :]:
                assert other is not None and (
                    one["x"] + one["width"] <= other["x"] + 1
                    or other["x"] + other["width"] <= one["x"] + 1
                    or one["y"] + one["height"] <= other["y"] + 1
                    or other["y"] + other["height"] <= one["y"] + 1
                ), f"{name}: tiles overlap {one} {other}"
        shape = mine["width"] / mine["height"]
        assert abs(shape - (16 / 9 if width > height else 3 / 4)) < 0.05, (name, shape)
        await alice.page.screenshot(path=str(artifacts / f"group-call-{name}.png"))
