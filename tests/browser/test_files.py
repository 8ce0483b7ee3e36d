"""Files between people (issue 12, docs/protocol.md §9.2): Send files on a person, the
receiver's Accept / Decline and Save, cancel from either side, resume after the data
link is forced down midway. What the receiver saves is compared by SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

from playwright.async_api import Locator, expect

from lancall_peer.filetransfer import FileReceiving, send_file
from lancall_peer.peer import PythonPeer
from tests.support.browseruser import User, connect_call


def payload(size: int, name: str = "holiday photo.jpg", mime: str = "image/jpeg") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": os.urandom(size)}


async def send_files(sender: User, to: str, *files: dict[str, Any]) -> None:
    item = sender.page.get_by_test_id("people-list").locator("li").filter(has_text=to)
    async with sender.page.expect_file_chooser() as chooser_info:
        await item.get_by_role("button", name="Send files", exact=True).click()
    chooser = await chooser_info.value
    assert chooser.is_multiple()
    await chooser.set_files(list(files))  # type: ignore[arg-type]


def transfer(user: User, name: str) -> Locator:
    return user.test_id("transfer").filter(has_text=name)


async def save(user: User, name: str, tmp_path: Path) -> bytes:
    async with user.page.expect_download() as download_info:
        await transfer(user, name).get_by_test_id("transfer-save").click()
    download = await download_info.value
    assert download.suggested_filename == name
    target = tmp_path / f"saved-{user.name}"
    await download.save_as(target)
    return target.read_bytes()


async def test_a_file_is_sent_and_saved_byte_identical(start_server, new_user, artifacts, tmp_path):
    live = await start_server()
    alice = await new_user(live, "Alice", viewport={"width": 360, "height": 740})
    bob = await new_user(live, "Bob")
    await expect(alice.person("Bob")).to_be_visible()

    photo = payload(3 * 1024 * 1024 + 123)
    note = payload(5000, "notes.txt", "text/plain")
    await send_files(alice, "Bob", photo, note)
    offered = transfer(bob, "holiday photo.jpg")
    await expect(offered.get_by_test_id("transfer-meta")).to_have_text("3.1 MB · image/jpeg")
    await expect(offered.get_by_test_id("transfer-status")).to_have_text("Wants to send you this file.")
    await expect(bob.test_id("transfer-announcement")).to_contain_text("Alice wants to send you")
    await expect(transfer(alice, "holiday photo.jpg").get_by_test_id("transfer-status")).to_have_text(
        "Waiting for Bob to accept…"
    )
    assert await bob.call_state() is None  # no call rang
    await alice.page.screenshot(path=str(artifacts / "files-offered-phone.png"))
    await bob.page.screenshot(path=str(artifacts / "files-offered-desktop.png"))

    await offered.get_by_role("button", name="Accept").click()
    # Accepting twice (a double tap) opens the file on disk once, and the file still arrives.
    await bob.js(
        """() => {
        const files = window.__lanCall.files;
        const entry = [...files.entries.values()].find((e) => e.transfer.offer.name === 'notes.txt');
        files.accept(entry.id);
        files.accept(entry.id);
      }"""
    )
    for name in ("holiday photo.jpg", "notes.txt"):
        await expect(transfer(bob, name).get_by_test_id("transfer-status")).to_have_text(
            "Received and checked. Save it to keep it.", timeout=30_000
        )
        await expect(transfer(alice, name).get_by_test_id("transfer-status")).to_have_text("Sent to Bob.")
    await alice.page.screenshot(path=str(artifacts / "files-sent-phone.png"))
    await bob.page.screenshot(path=str(artifacts / "files-received-desktop.png"))

    saved = await save(bob, "holiday photo.jpg", tmp_path)
    assert hashlib.sha256(saved).hexdigest() == hashlib.sha256(photo["buffer"]).hexdigest()
    assert await save(bob, "notes.txt", tmp_path) == note["buffer"]
    await expect(transfer(bob, "notes.txt").get_by_test_id("transfer-status")).to_have_text("Saved.")
    await transfer(bob, "notes.txt").get_by_test_id("transfer-dismiss").click()
    await expect(transfer(bob, "notes.txt")).to_have_count(0)


async def test_decline(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await expect(alice.person("Bob")).to_be_visible()
    await send_files(alice, "Bob", payload(20_000, "secret.pdf", "application/pdf"))
    await transfer(bob, "secret.pdf").get_by_role("button", name="Decline").click()
    status = transfer(alice, "secret.pdf").get_by_test_id("transfer-status")
    await expect(status).to_have_text("Bob declined.")
    await expect(transfer(bob, "secret.pdf").get_by_test_id("transfer-status")).to_have_text("Declined.")
    await expect(transfer(bob, "secret.pdf").get_by_test_id("transfer-save")).to_be_hidden()


# With the sender's window shrunk to SMALL_WINDOW (public/data/files.js sendWindowForTests)
# and the receiver's disk held, a file of BEYOND_THE_WINDOW cannot be sent whole.
SMALL_WINDOW = 2 * 1024 * 1024  # at least ACK_EVERY (1 MiB), or nothing would ever be acknowledged
BEYOND_THE_WINDOW = 3 * 1024 * 1024


async def small_window(user: User) -> None:
    await user.js(f"() => {{ window.__lanCall.files.sendWindowForTests = {SMALL_WINDOW}; }}")


async def hold_disk(user: User) -> None:
    """Writes of files this user accepts from now on wait until `release_disk`."""
    await user.js(
        "() => { const f = window.__lanCall.files;"
        " f.diskHeldForTests = new Promise((r) => (f.releaseDisk = r)); }"
    )


async def release_disk(user: User) -> None:
    await user.js("() => { const f = window.__lanCall.files; f.diskHeldForTests = null; f.releaseDisk(); }")


async def accept_and_wait_arriving(bob: User, name: str) -> None:
    """Accept, and wait until bytes arrive (with the disk held, none is written yet)."""
    await transfer(bob, name).get_by_role("button", name="Accept").click()
    await bob.wait_for(
        "() => [...window.__lanCall.files.entries.values()]"
        ".some((e) => e.direction === 'in' && e.transfer.received > 0)"
    )


async def accept_and_wait_moving(bob: User, name: str) -> None:
    """Accept with the disk held: bytes arrive, none is written, and the card says so."""
    await accept_and_wait_arriving(bob, name)
    await expect(transfer(bob, name).get_by_test_id("transfer-status")).to_contain_text(" of ")


async def test_cancel_from_either_side(start_server, new_user):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await expect(alice.person("Bob")).to_be_visible()
    # Hold the receiver's disk so the file is still moving when Cancel is pressed.
    await hold_disk(bob)
    await send_files(alice, "Bob", payload(4 * 1024 * 1024, "big.bin", "application/octet-stream"))
    await accept_and_wait_moving(bob, "big.bin")
    await transfer(bob, "big.bin").get_by_test_id("transfer-cancel").click()
    await expect(transfer(alice, "big.bin").get_by_test_id("transfer-status")).to_have_text(
        "The other side cancelled."
    )
    await expect(transfer(bob, "big.bin").get_by_test_id("transfer-status")).to_have_text("Cancelled.")
    await expect(transfer(bob, "big.bin").get_by_test_id("transfer-save")).to_be_hidden()

    await send_files(alice, "Bob", payload(4 * 1024 * 1024, "big2.bin", "application/octet-stream"))
    await accept_and_wait_moving(bob, "big2.bin")
    await transfer(alice, "big2.bin").get_by_test_id("transfer-cancel").click()
    await expect(transfer(bob, "big2.bin").get_by_test_id("transfer-status")).to_have_text(
        "The other side cancelled."
    )
    await expect(transfer(bob, "big2.bin").get_by_test_id("transfer-save")).to_be_hidden()
    await release_disk(bob)


async def test_resume_after_a_forced_disconnect(start_server, new_user, tmp_path):
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob")
    await expect(alice.person("Bob")).to_be_visible()
    bob_id = await bob.id
    await hold_disk(bob)
    await small_window(alice)
    movie = payload(BEYOND_THE_WINDOW, "movie.mp4", "video/mp4")
    await send_files(alice, "Bob", movie)
    await accept_and_wait_arriving(bob, "movie.mp4")
    # The data link goes down midway (as in a network drop): both sides see it. Alice
    # cannot have sent it all: Bob's disk holds her window.
    await alice.js("(id) => window.__lanCall.data.peer(id).close('test')", bob_id)
    await expect(transfer(bob, "movie.mp4").get_by_test_id("transfer-status")).to_contain_text(
        "Connection lost at"
    )
    interrupted_at = await bob.js(
        "[...window.__lanCall.files.entries.values()].find((e) => e.direction === 'in').transfer.written"
    )
    await release_disk(bob)
    assert 0 <= interrupted_at < len(movie["buffer"])
    await expect(transfer(bob, "movie.mp4").get_by_test_id("transfer-status")).to_have_text(
        "Received and checked. Save it to keep it.", timeout=60_000
    )
    # It resumed: the second attempt did not start again from zero.
    resumed_from = await alice.js(
        "[...window.__lanCall.files.entries.values()].find((e) => e.direction === 'out').transfer.resumedFrom"
    )
    assert resumed_from > 0  # what was written after the disk was let go
    saved = await save(bob, "movie.mp4", tmp_path)
    assert hashlib.sha256(saved).hexdigest() == hashlib.sha256(movie["buffer"]).hexdigest()


async def test_a_python_peer_sends_to_and_receives_from_a_browser(
    start_server, new_user, client_ssl, tmp_path
):
    live = await start_server()
    alice = await new_user(live, "Alice")
    inbox = tmp_path / "inbox"
    async with PythonPeer(live.url, "Robot", ssl_context=client_ssl, video=False) as robot:
        receiving = FileReceiving(robot.data, inbox)
        alice_id = await robot.wait_for_peer("Alice")
        await expect(alice.person("Robot")).to_be_visible()

        # Python -> browser: offered with its SHA-256, accepted, saved byte-identical.
        report = tmp_path / "report.pdf"
        report.write_bytes(os.urandom(2 * 1024 * 1024 + 7))
        sending = asyncio.create_task(send_file(robot.data.peer(alice_id), report, mime="application/pdf"))
        offered = transfer(alice, "report.pdf")
        await expect(offered.get_by_test_id("transfer-meta")).to_have_text("2.1 MB · application/pdf")
        await offered.get_by_role("button", name="Accept").click()
        await asyncio.wait_for(sending, 30)  # raises TransferFailed unless the browser checked it
        await expect(offered.get_by_test_id("transfer-status")).to_have_text(
            "Received and checked. Save it to keep it."
        )
        saved = await save(alice, "report.pdf", tmp_path)
        assert hashlib.sha256(saved).hexdigest() == hashlib.sha256(report.read_bytes()).hexdigest()

        # Browser -> Python: the peer accepts into its folder, renamed from .part once checked.
        picture = payload(1024 * 1024 + 3, "cat.png", "image/png")
        await send_files(alice, "Robot", picture)
        await expect(transfer(alice, "cat.png").get_by_test_id("transfer-status")).to_have_text(
            "Sent to Robot.", timeout=30_000
        )
        assert [(i.state, i.target.name) for i in receiving.done] == [("done", "cat.png")]
        assert (inbox / "cat.png").read_bytes() == picture["buffer"]
        assert not list(inbox.glob("*.part"))


async def test_send_files_from_the_call_chat(start_server, new_user, artifacts):
    live = await start_server()
    alice = await new_user(live, "Alice", viewport={"width": 360, "height": 740})
    bob = await new_user(live, "Bob", viewport={"width": 1280, "height": 800})
    await expect(alice.person("Bob")).to_be_visible()
    await connect_call(alice, bob)
    await alice.test_id("toggle-chat").click()
    async with alice.page.expect_file_chooser() as chooser_info:
        await alice.test_id("chat-panel").get_by_role("button", name="Send files", exact=True).click()
    await (await chooser_info.value).set_files([payload(4 * 1024 * 1024, "slides.pdf", "application/pdf")])
    offered = transfer(bob, "slides.pdf")
    await expect(offered).to_be_visible()
    await hold_disk(bob)  # so it is still moving when the screenshots are taken
    await offered.get_by_role("button", name="Accept").click()
    await expect(offered.get_by_test_id("transfer-status")).to_contain_text(" of ")
    await alice.page.screenshot(path=str(artifacts / "files-in-call-phone.png"))
    await bob.page.screenshot(path=str(artifacts / "files-in-call-desktop.png"))
    await release_disk(bob)
    await expect(offered.get_by_test_id("transfer-status")).to_have_text(
        "Received and checked. Save it to keep it.", timeout=30_000
    )
    assert await alice.call_state() == "connected"  # the call went on


async def test_several_files_to_a_phone_fold_away_and_long_names_show_whole(
    start_server, new_user, artifacts
):
    """Issue 19 (7): four files to a phone covered more than half the screen, each with its
    own Accept, long names cut. The tray now has a header that says what is there and folds
    the list away; names wrap; an offer waiting for Accept unfolds it."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob", viewport={"width": 360, "height": 740})
    long_name = "Quarterly report for the regional planning committee, final version (2).pdf"
    files = [payload(2048, f"photo {i}.jpg") for i in range(3)] + [
        payload(2048, long_name, "application/pdf")
    ]
    await send_files(alice, "Bob", *files)
    tray = bob.test_id("transfers")
    await expect(bob.test_id("transfer")).to_have_count(4)
    await expect(bob.test_id("transfers-count")).to_have_text("4 files · 4 waiting for you")
    height = (await tray.bounding_box() or {}).get("height", 0)
    assert 0 < height <= 0.4 * 740, height
    name = transfer(bob, long_name).locator(".transfer-name")
    await expect(name).to_have_text(long_name)
    assert await name.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1")
    await bob.page.screenshot(path=str(artifacts / "files-tray-360x740.png"))

    toggle = bob.test_id("transfers-toggle")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(bob.test_id("transfer-list")).to_be_hidden()
    folded = (await tray.bounding_box() or {}).get("height", 999)
    assert folded < 64, folded
    await bob.page.screenshot(path=str(artifacts / "files-tray-folded-360x740.png"))
    # A new offer unfolds it: Accept must be in sight.
    await send_files(alice, "Bob", payload(1024, "one more.txt", "text/plain"))
    await expect(bob.test_id("transfer-list")).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(bob.test_id("transfers-count")).to_have_text("5 files · 5 waiting for you")


async def test_a_sender_whose_page_reloads_is_not_waited_for_and_sending_again_continues(
    start_server, new_user, artifacts, tmp_path
):
    """Issue 19 (3): the sender's reload left the receiver "resuming when Alice is back"
    for minutes although she was back; it is told at once that she cannot send the rest.
    Sending the same file again continues from what arrived, as one transfer."""
    live = await start_server()
    alice = await new_user(live, "Alice")
    bob = await new_user(live, "Bob", viewport={"width": 360, "height": 740})
    await expect(alice.person("Bob")).to_be_visible()
    await hold_disk(bob)
    await small_window(alice)
    movie = payload(BEYOND_THE_WINDOW, "movie.mp4", "video/mp4")
    await send_files(alice, "Bob", movie)
    await accept_and_wait_arriving(bob, "movie.mp4")
    await alice.page.reload()  # she cannot have sent it all: Bob's disk holds her window
    await release_disk(bob)
    await alice.wait_for("window.__lanCall?.link === 'online'")
    status = transfer(bob, "movie.mp4").get_by_test_id("transfer-status")
    await expect(status).to_contain_text(
        "Alice can no longer send the rest (their page was reloaded or closed)"
    )
    await expect(status).to_contain_text("ask them to send it again, and it continues from there")
    # What is on Bob's disk once the write under way when she left has landed (the disk was
    # held until just now): the part a second sending continues from (files.js waits the same).
    kept = await bob.js(
        "async () => { const t = [...window.__lanCall.files.entries.values()]"
        ".find((e) => e.direction === 'in').transfer; await t.writes; return t.written; }"
    )
    assert 0 < kept < len(movie["buffer"])

    # The same file again: one card, which says it continues, and only the rest crosses.
    await expect(alice.person("Bob")).to_be_visible()
    await send_files(alice, "Bob", movie)
    await expect(transfer(bob, "movie.mp4")).to_have_count(1)
    await expect(status).to_contain_text("Sent again: it continues from the")
    await bob.page.screenshot(path=str(artifacts / "files-sent-again-360x740.png"))
    await transfer(bob, "movie.mp4").get_by_role("button", name="Accept").click()
    await expect(status).to_have_text("Received and checked. Save it to keep it.", timeout=60_000)
    resumed_from = await alice.js(
        "[...window.__lanCall.files.entries.values()].find((e) => e.direction === 'out').transfer.resumedFrom"
    )
    assert resumed_from == kept
    saved = await save(bob, "movie.mp4", tmp_path)
    assert hashlib.sha256(saved).hexdigest() == hashlib.sha256(movie["buffer"]).hexdigest()
