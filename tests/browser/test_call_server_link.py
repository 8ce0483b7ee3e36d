"""In a call, the call screen says when the server has been away for a while
(public/lobby/serverchip.js): the page header's "Reconnecting…" and the lobby's banner are behind
the call screen, so without the chip someone in a call saw nothing while signalling was
down. The call itself goes on (media goes browser to browser), and a blip shows nothing.

The server is stopped and started again on the same port (`LiveServer.stop/start`), the way
a restart or a crash and a supervisor look to the tabs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from tests.browser.test_group_calls import three_in_a_call, wait_links
from tests.support.browseruser import User, connect_call
from tests.support.liveserver import LiveServer

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
SHOW_AFTER = 2.0  # seconds: public/lobby/serverchip.js SHOW_AFTER_MS
OUTAGE = 3.0  # seconds the server stays away
BACK_WITHIN = 1.5  # seconds from the server back to the chip gone (reconnect backoff is at most 1 s)
CHIP = "server-link-chip"

# The link state and the chip as they change, stamped in the page (no polling gap hides a flash).
WATCH_JS = """() => {
  const log = (window.__serverChip = []);
  window.__focusBefore = document.activeElement;
  const chip = document.getElementById('server-link-chip');
  const status = document.getElementById('link-status');
  const note = () => {
    const shown = chip.hidden ? '' : chip.textContent;
    const entry = {t: performance.now(), link: status.dataset.state, chip: shown};
    const last = log[log.length - 1];
    if (!last || last.link !== entry.link || last.chip !== entry.chip) log.push(entry);
  };
  note();
  const watch = {attributes: true, childList: true, characterData: true, subtree: true};
  new MutationObserver(note).observe(chip, watch);
  new MutationObserver(note).observe(status, watch);
}"""

# What the chip covers of what a person in the call reads or taps.
COVERS_JS = """() => {
  const chip = document.getElementById('server-link-chip').getBoundingClientRect();
  const covered = [];
  // (In a grid, "Verify" is on each tile, not in the header, so only a 1:1 call has the header chip.)
  const seen = '#call .controls button, #call-name, #call [data-action="fit"], #pip, .tile-label, ' +
    '.call-line > :not(.visually-hidden), .call[data-layout="single"] [data-testid="verify-chip"]';
  for (const el of document.querySelectorAll(seen)) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
    if (r.left < chip.right && chip.left < r.right && r.top < chip.bottom && chip.top < r.bottom) {
      covered.push(el.dataset.testid || el.id || el.className);
    }
  }
  return {covered, chip: [chip.left, chip.top, chip.right, chip.bottom]};
}"""


async def watch(*users: User) -> None:
    for user in users:
        await user.js(WATCH_JS)


async def log_of(user: User) -> list[dict[str, Any]]:
    return await user.js("() => window.__serverChip")


def outages(log: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(down at, back at) in page milliseconds, for each time the link left `online`."""
    spans: list[tuple[float, float]] = []
    down = None
    for entry in log:
        if entry["link"] != "online" and down is None:
            down = entry["t"]
        elif entry["link"] == "online" and down is not None:
            spans.append((down, entry["t"]))
            down = None
    return spans


async def frames(user: User) -> int:
    return int((await user.media_stats() or {}).get("videoFrames", 0))


async def check_chip_shown(user: User) -> float:
    """The chip is up, announced politely, takes no focus and covers nothing; returns how
    long after the link went down it appeared (s)."""
    await expect(user.test_id(CHIP)).to_be_visible(timeout=(SHOW_AFTER + 2) * 1000)
    region = user.test_id("server-link")
    await expect(region).to_have_attribute("role", "status")
    await expect(region).to_contain_text("Reconnecting to the server")
    assert await user.js("() => document.activeElement === window.__focusBefore"), "the chip moved the focus"
    placed = await user.js(COVERS_JS)
    assert placed["covered"] == [], (f"{user.name}: the chip covers {placed['covered']}", placed["chip"])
    log = await log_of(user)
    down_at = next(e["t"] for e in log if e["link"] != "online")
    shown_at = next(e["t"] for e in log if e["chip"])
    return (shown_at - down_at) / 1000


async def stop_for(live: LiveServer, seconds: float) -> None:
    """Stop the server for `seconds`, then start it again on the same port."""
    await live.stop()
    await asyncio.sleep(seconds)
    await live.start()


async def wait_back(user: User) -> float:
    """Until the link is back and the chip gone; returns time.monotonic() then."""
    await user.wait_for(
        "window.__lanCall.link === 'online' && document.getElementById('server-link-chip').hidden", timeout=5
    )
    return time.monotonic()


async def test_a_call_says_the_server_is_away_after_two_seconds_and_goes_on(
    start_server, new_user, artifacts: Path
):
    live = await start_server()
    alice = await new_user(live, "Alice", viewport=PHONE)
    bob = await new_user(live, "Bob", viewport=DESKTOP)
    await connect_call(alice, bob)
    await asyncio.gather(alice.wait_media_flowing(), bob.wait_media_flowing())
    await watch(alice, bob)

    # A blip: the server gone for a moment. The tabs reconnect; the call screen shows nothing.
    blip_began = time.monotonic()
    await stop_for(live, 0.3)
    await asyncio.gather(wait_back(alice), wait_back(bob))
    await asyncio.sleep(max(0.0, blip_began + SHOW_AFTER + 0.5 - time.monotonic()))  # a late chip would be up
    blips = []
    for user in (alice, bob):
        log = await log_of(user)
        spans = outages(log)
        assert spans, (f"{user.name}'s link never went down in the blip", log)
        blips.append(sum(back - down for down, back in spans) / 1000)
        assert all(back - down < SHOW_AFTER * 1000 for down, back in spans), ("not a blip", log)
        assert not [e for e in log if e["chip"]], (f"{user.name} saw the chip for a blip", log)
    await watch(alice, bob)

    # Away for OUTAGE seconds: the chip comes after two, on both screens, while the call goes on.
    await live.stop()
    stopped = time.monotonic()
    before = {user.name: await frames(user) for user in (alice, bob)}
    delays = await asyncio.gather(check_chip_shown(alice), check_chip_shown(bob))
    for user, delay in zip((alice, bob), delays, strict=True):
        assert SHOW_AFTER - 0.1 <= delay <= SHOW_AFTER + 1.0, (
            f"{user.name}'s chip came {delay:.2f} s after the drop"
        )
        await expect(user.test_id(CHIP)).to_have_text("Reconnecting to the server… Your call continues.")
    await asyncio.gather(
        alice.page.screenshot(path=str(artifacts / "server-away-call-alice-360x740.png")),
        bob.page.screenshot(path=str(artifacts / "server-away-call-bob-1280x800.png")),
    )
    await asyncio.sleep(max(0.0, stopped + OUTAGE - time.monotonic()))
    for user in (alice, bob):
        assert await frames(user) > before[user.name] + 10, (
            f"{user.name}'s picture stalled without the server"
        )
        assert await user.call_state() == "connected"

    await live.start()
    back = time.monotonic()
    gone = await asyncio.gather(wait_back(alice), wait_back(bob))
    for user, at in zip((alice, bob), gone, strict=True):
        assert at - back <= BACK_WITHIN, (
            f"{user.name}'s chip stayed {at - back:.2f} s after the server was back"
        )
        log = await log_of(user)
        # The chip goes in the same step as the link comes back: never up while online.
        assert log[-1]["link"] == "online" and log[-1]["chip"] == "", log
        assert not [e for e in log if e["link"] == "online" and e["chip"]], (
            f"{user.name}'s chip outlived the link",
            log,
        )
    assert await alice.call_state() == "connected" and await bob.call_state() == "connected"
    print(
        f"\n1:1 call: a 0.3 s stop left the links down {blips[0]:.2f} s / {blips[1]:.2f} s, no chip; "
        f"a {OUTAGE:g} s stop: chip after {delays[0]:.2f} s / {delays[1]:.2f} s, gone "
        f"{gone[0] - back:.2f} s / {gone[1] - back:.2f} s after the server was back (Alice, Bob)"
    )


async def test_a_group_call_says_it_too_clear_of_the_names_and_controls(
    start_server, new_user, artifacts: Path
):
    live = await start_server()
    alice = await new_user(live, "Alice", viewport=PHONE)
    bob = await new_user(live, "Bob", viewport=DESKTOP)
    carol = await new_user(live, "Carol")
    await three_in_a_call(alice, bob, carol)
    await watch(alice, bob)
    decoded = await wait_links(alice, {"Bob", "Carol"})

    await live.stop()
    stopped = time.monotonic()
    delays = await asyncio.gather(check_chip_shown(alice), check_chip_shown(bob))
    await asyncio.gather(
        alice.page.screenshot(path=str(artifacts / "server-away-group-alice-360x740.png")),
        bob.page.screenshot(path=str(artifacts / "server-away-group-bob-1280x800.png")),
    )
    # Everyone's picture keeps coming to Alice while the server is away.
    await wait_links(alice, {"Bob", "Carol"}, frames_above=max(decoded.values()) + 10, timeout=OUTAGE)
    await asyncio.sleep(max(0.0, stopped + OUTAGE - time.monotonic()))

    await live.start()
    back = time.monotonic()
    gone = await asyncio.gather(wait_back(alice), wait_back(bob))
    assert max(gone) - back <= BACK_WITHIN, (
        f"the chip stayed {max(gone) - back:.2f} s after the server was back"
    )
    await wait_links(alice, {"Bob", "Carol"})
    print(f"\ngroup call: chip after {delays[0]:.2f} s / {delays[1]:.2f} s (Alice, Bob)")
