"""File transfers for the Python peer (docs/protocol.md §9.2): the browser's
`public/data/transfer.js` protocol over a data link's named channels.

    sent = await send_file(link, Path("photo.jpg"))     # True once the receiver checked it
    receiving = FileReceiving(links, Path("incoming"))  # accept every offer into a folder

The sender offers with the SHA-256 computed in advance, waits for `file-accept`, sends the
bytes in chunks (the channel's buffered amount kept under HIGH_WATER, at most WINDOW beyond
the receiver's last `file-ack`), then `file-end`, and waits for `file-done`. The receiver
writes to `NAME.part`, hashes as it goes, checks every chunk against the offer, and renames
the file only when the SHA-256 matches; anything wrong is a `file-error` on that transfer
and the partial file is deleted. A re-offer of a known transfer (the sender's next attempt
after a dropped channel) is answered with the bytes already written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCDataChannel

from .datalink import DataLink, DataLinkError, DataLinks

log = logging.getLogger("lancall_peer.filetransfer")

Json = dict[str, Any]

LABEL_PREFIX = "file:"
CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 256 * 1024
HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024
WINDOW = 16 * 1024 * 1024
ACK_EVERY = 1024 * 1024
MAX_TEXT_CHARS = 4096
ANSWER_TIMEOUT = 120.0  # a person deciding whether to accept
DONE_TIMEOUT = 60.0  # the receiver checking the file after the last byte
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HASH = re.compile(r"[0-9a-f]{64}")
UNREADABLE = "The other device sent a message this app cannot read."
DAMAGED = "The file arrived damaged (its SHA-256 does not match); nothing was saved."


class TransferFailed(Exception):
    """A transfer that ended without the file arriving (declined, cancelled, an error)."""


def transfer_id_of(label: str) -> str | None:
    """The transfer id of a channel label `file:<id>:<attempt>`, or None."""
    if not label.startswith(LABEL_PREFIX):
        return None
    parts = label[len(LABEL_PREFIX) :].split(":")
    if len(parts) != 2 or not _ID.fullmatch(parts[0]) or not re.fullmatch(r"\d{1,6}", parts[1]):
        return None
    return parts[0]


def _offset(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**53


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit


_CHECKS: dict[str, Callable[[Json], bool]] = {
    "file-offer": lambda d: (
        _text(d.get("name"), 255)
        and bool(d.get("name"))
        and _offset(d.get("size"))
        and _text(d.get("type"), 255)
        and _offset(d.get("chunkSize"))
        and 0 < d["chunkSize"] <= MAX_CHUNK_SIZE
        and (d.get("sha256") is None or (isinstance(d["sha256"], str) and bool(_HASH.fullmatch(d["sha256"]))))
    ),
    "file-accept": lambda d: _offset(d.get("offset")),
    "file-decline": lambda d: True,
    "file-ack": lambda d: _offset(d.get("offset")),
    "file-end": lambda d: isinstance(d.get("sha256"), str) and bool(_HASH.fullmatch(d["sha256"])),
    "file-done": lambda d: True,
    "file-cancel": lambda d: d.get("reason") is None or _text(d.get("reason"), 500),
    "file-error": lambda d: _text(d.get("message"), 500),
}


def parse(raw: str | bytes, transfer_id: str) -> tuple[str, Json]:
    """(type, data) of one text message of a transfer channel; ValueError (a sentence) if malformed."""
    if not isinstance(raw, str) or len(raw) > MAX_TEXT_CHARS:
        raise ValueError(UNREADABLE)
    try:
        message = json.loads(raw)
    except ValueError:
        raise ValueError(UNREADABLE) from None
    if not isinstance(message, dict):
        raise ValueError(UNREADABLE)
    kind, data = message.get("type"), message.get("data")
    check = _CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None or not isinstance(data, dict) or data.get("id") != transfer_id or not check(data):
        raise ValueError(UNREADABLE)
    return str(kind), data


def _send(channel: RTCDataChannel, kind: str, data: Json) -> None:
    if channel.readyState == "open":
        channel.send(json.dumps({"type": kind, "data": data}))


def safe_name(name: str) -> str:
    """The last path component, without control characters or leading dots."""
    base = re.split(r"[\\/]", name)[-1]
    clean = re.sub(r"[\x00-\x1f\x7f]", "", base).lstrip(".").strip()
    return clean or "file"


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


async def send_file(
    link: DataLink,
    path: Path,
    *,
    chunk_size: int = CHUNK_SIZE,
    mime: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Offer `path` to the link's peer and send it; returns once they checked it
    (`file-done`), raises TransferFailed with their words otherwise."""
    size = (await asyncio.to_thread(path.stat)).st_size
    transfer_id = secrets.token_hex(16)
    sha256 = await asyncio.to_thread(_sha256_of, path)
    offer = {"id": transfer_id, "name": path.name, "size": size, "type": mime, "chunkSize": chunk_size}
    offer["sha256"] = sha256
    channel = await link.channel(f"{LABEL_PREFIX}{transfer_id}:1")
    channel.bufferedAmountLowThreshold = LOW_WATER
    inbox: asyncio.Queue[tuple[str, Json]] = asyncio.Queue()
    acked = 0
    drained = asyncio.Event()
    closed = asyncio.Event()

    def on_message(raw: str | bytes) -> None:
        try:
            inbox.put_nowait(parse(raw, transfer_id))
        except ValueError as exc:
            _send(channel, "file-error", {"id": transfer_id, "message": str(exc)})
            inbox.put_nowait(("file-error", {"message": f"we could not read it: {exc}"}))

    channel.on("message", on_message)
    channel.on("bufferedamountlow", drained.set)
    channel.on("close", closed.set)

    async def answer(within: float) -> tuple[str, Json]:
        async with asyncio.timeout(within):
            getter = asyncio.ensure_future(inbox.get())
            closer = asyncio.ensure_future(closed.wait())
            done, _ = await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
            closer.cancel()
            if getter not in done:
                getter.cancel()
                raise TransferFailed("The link closed before the transfer ended.")
            return getter.result()

    def ended(kind: str, data: Json) -> TransferFailed | None:
        if kind == "file-decline":
            return TransferFailed("Declined.")
        if kind == "file-cancel":
            return TransferFailed(f"The other side cancelled: {data.get('reason') or 'Cancelled.'}")
        if kind == "file-error":
            return TransferFailed(f"The other device reported a problem: {data['message']}")
        return None

    try:
        _send(channel, "file-offer", offer)
        kind, data = await answer(ANSWER_TIMEOUT)
        if failure := ended(kind, data):
            raise failure
        if kind != "file-accept" or data["offset"] > size:
            raise TransferFailed(f"The receiver sent {kind} at the wrong time.")
        offset = data["offset"]
        with path.open("rb") as file:
            file.seek(offset)
            while offset < size:
                while not inbox.empty():  # acks (or the end) while sending
                    kind, data = inbox.get_nowait()
                    if failure := ended(kind, data):
                        raise failure
                    if kind == "file-ack":
                        acked = data["offset"]
                        if progress:
                            progress(acked, size)
                if channel.readyState != "open":
                    raise TransferFailed("The link closed before the transfer ended.")
                if channel.bufferedAmount > HIGH_WATER or offset - acked >= WINDOW:
                    drained.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await drained.wait()
                    continue
                chunk = file.read(min(chunk_size, size - offset))
                if not chunk:
                    raise TransferFailed("The file could not be read any more.")
                channel.send(chunk)
                offset += len(chunk)
        _send(channel, "file-end", {"id": transfer_id, "sha256": sha256})
        while True:
            kind, data = await answer(DONE_TIMEOUT)
            if failure := ended(kind, data):
                raise failure
            if kind == "file-done":
                if progress:
                    progress(size, size)
                return
            if kind != "file-ack":
                raise TransferFailed(f"The receiver sent {kind} at the wrong time.")
    except TimeoutError:
        _send(channel, "file-cancel", {"id": transfer_id, "reason": "No answer in time."})
        raise TransferFailed(f"{link.name} did not answer in time.") from None
    except asyncio.CancelledError:
        _send(channel, "file-cancel", {"id": transfer_id, "reason": "Cancelled."})
        raise
    finally:
        with contextlib.suppress(Exception):
            if channel.readyState == "open":
                await asyncio.sleep(0.2)  # let the last message out before closing
                channel.close()


@dataclass
class Incoming:
    """One file being received into a folder."""

    id: str
    peer: str
    offer: Json
    part: Path
    target: Path
    written: int = 0
    acked: int = 0
    hash: Any = field(default_factory=hashlib.sha256)
    state: str = "receiving"  # receiving | interrupted | done | failed | cancelled
    reason: str = ""
    channel: RTCDataChannel | None = None
    started: float = field(default_factory=time.monotonic)


class FileReceiving:
    """Accept every file offered over `links` into `folder` (the `--receive DIR` tool).
    `done` holds the finished transfers; `on_finished(incoming)` is called for each."""

    def __init__(
        self,
        links: DataLinks,
        folder: Path,
        on_finished: Callable[[Incoming], None] | None = None,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.transfers: dict[str, Incoming] = {}
        self.done: list[Incoming] = []
        self.on_finished = on_finished
        links.on_channel(self._channel)

    def _channel(self, link: DataLink, channel: RTCDataChannel) -> None:
        transfer_id = transfer_id_of(channel.label)
        if transfer_id is None:
            return

        def first(raw: str | bytes) -> None:
            channel.remove_listener("message", first)
            try:
                kind, offer = parse(raw, transfer_id)
            except ValueError:
                channel.close()
                return
            if kind != "file-offer":
                channel.close()
                return
            known = self.transfers.get(transfer_id)
            if known is not None:
                self._resume(known, channel, offer, link)
            else:
                self._start(transfer_id, channel, offer, link)

        channel.on("message", first)

    def _free_target(self, name: str) -> Path:
        target = self.folder / name
        stem, suffix, n = target.stem, target.suffix, 1
        while target.exists() or target.with_name(target.name + ".part").exists():
            n += 1
            target = self.folder / f"{stem} ({n}){suffix}"
        return target

    def _start(self, transfer_id: str, channel: RTCDataChannel, offer: Json, link: DataLink) -> None:
        target = self._free_target(safe_name(offer["name"]))
        part = target.with_name(target.name + ".part")
        part.write_bytes(b"")
        incoming = Incoming(transfer_id, link.name, offer, part, target)
        self.transfers[transfer_id] = incoming
        print(f"receiving {offer['name']!r} ({offer['size']} bytes) from {link.name!r}", flush=True)
        self._attach(incoming, channel)
        _send(channel, "file-accept", {"id": transfer_id, "offset": 0})

    def _resume(self, incoming: Incoming, channel: RTCDataChannel, offer: Json, link: DataLink) -> None:
        fields = ("name", "size", "type", "chunkSize", "sha256")
        if any(offer.get(k) != incoming.offer.get(k) for k in fields):
            message = "The file changed since it was offered."
            _send(channel, "file-error", {"id": incoming.id, "message": message})
            return
        if incoming.state == "done":
            _send(channel, "file-done", {"id": incoming.id})
            return
        if incoming.state != "interrupted":
            channel.close()
            return
        incoming.state = "receiving"
        self._attach(incoming, channel)
        _send(channel, "file-accept", {"id": incoming.id, "offset": incoming.written})

    def _attach(self, incoming: Incoming, channel: RTCDataChannel) -> None:
        incoming.channel = channel
        channel.on("message", lambda raw: self._message(incoming, channel, raw))
        channel.on("close", lambda: self._closed(incoming, channel))

    def _closed(self, incoming: Incoming, channel: RTCDataChannel) -> None:
        if incoming.channel is channel and incoming.state == "receiving":
            incoming.state = "interrupted"
            incoming.channel = None

    def _fail(self, incoming: Incoming, message: str) -> None:
        if incoming.state in ("done", "failed", "cancelled"):
            return
        if incoming.channel is not None:
            _send(incoming.channel, "file-error", {"id": incoming.id, "message": message})
        self._finish(incoming, "failed", message)

    def _finish(self, incoming: Incoming, state: str, reason: str = "") -> None:
        incoming.state, incoming.reason = state, reason
        if state != "done":
            incoming.part.unlink(missing_ok=True)
        self.done.append(incoming)
        print(f"{incoming.offer['name']!r} from {incoming.peer!r}: {state} {reason}".rstrip(), flush=True)
        if self.on_finished:
            self.on_finished(incoming)

    def _message(self, incoming: Incoming, channel: RTCDataChannel, raw: str | bytes) -> None:
        if incoming.channel is not channel or incoming.state != "receiving":
            return
        if isinstance(raw, bytes):
            chunk_size, size = incoming.offer["chunkSize"], incoming.offer["size"]
            if len(raw) > chunk_size:
                return self._fail(
                    incoming,
                    f"The sender sent a piece of {len(raw)} bytes; it announced at most {chunk_size}.",
                )
            if incoming.written + len(raw) > size:
                return self._fail(incoming, f"The sender sent more than the {size} bytes it announced.")
            with incoming.part.open("r+b") as file:
                file.seek(incoming.written)
                file.write(raw)
            incoming.hash.update(raw)
            incoming.written += len(raw)
            if incoming.written - incoming.acked >= ACK_EVERY:
                incoming.acked = incoming.written
                _send(channel, "file-ack", {"id": incoming.id, "offset": incoming.written})
            return
        try:
            kind, data = parse(raw, incoming.id)
        except ValueError as exc:
            return self._fail(incoming, str(exc))
        if kind == "file-cancel":
            reason = data.get("reason") or "Cancelled."
            return self._finish(incoming, "cancelled", f"The other side cancelled: {reason}")
        if kind == "file-error":
            problem = data["message"]
            return self._finish(incoming, "failed", f"The other device reported a problem: {problem}")
        if kind != "file-end":
            return self._fail(incoming, f"The sender sent {kind} at the wrong time.")
        size = incoming.offer["size"]
        if incoming.written != size:
            return self._fail(incoming, f"The file ended after {incoming.written} of {size} bytes.")
        announced = incoming.offer.get("sha256")
        if data["sha256"] != incoming.hash.hexdigest() or (announced and announced != data["sha256"]):
            return self._fail(incoming, DAMAGED)
        incoming.part.rename(incoming.target)
        _send(channel, "file-done", {"id": incoming.id})
        self._finish(incoming, "done")


__all__ = ["DataLinkError", "FileReceiving", "TransferFailed", "send_file", "transfer_id_of"]
