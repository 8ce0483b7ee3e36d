"""The Python peer's file receiver (lancall_peer/filetransfer.py) against bad input,
with a fake channel: each case fails that transfer with a sentence, tells the sender,
and leaves nothing saved."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from lancall_peer.filetransfer import DAMAGED, UNREADABLE, FileReceiving, parse, safe_name, transfer_id_of


class FakeChannel:
    def __init__(self, label: str) -> None:
        self.label = label
        self.readyState = "open"
        self.sent: list[Any] = []
        self.listeners: dict[str, list[Any]] = {}

    def on(self, event: str, listener: Any) -> None:
        self.listeners.setdefault(event, []).append(listener)

    def remove_listener(self, event: str, listener: Any) -> None:
        self.listeners[event].remove(listener)

    def send(self, data: Any) -> None:
        self.sent.append(json.loads(data) if isinstance(data, str) else data)

    def close(self) -> None:
        self.readyState = "closed"

    def deliver(self, data: Any) -> None:
        for listener in list(self.listeners.get("message", [])):
            listener(data)


class FakeLinks:
    def __init__(self) -> None:
        self.callbacks: list[Any] = []

    def on_channel(self, callback: Any) -> None:
        self.callbacks.append(callback)


class FakeLink:
    name = "Alice"


def msg(kind: str, **data: Any) -> str:
    return json.dumps({"type": kind, "data": {"id": "t1", **data}})


def start(tmp_path: Path, size: int = 100, chunk: int = 40) -> tuple[FileReceiving, FakeChannel]:
    links = FakeLinks()
    receiving = FileReceiving(links, tmp_path)  # type: ignore[arg-type]
    channel = FakeChannel("file:t1:1")
    links.callbacks[0](FakeLink(), channel)
    channel.deliver(msg("file-offer", name="../../etc/a.txt", size=size, type="text/plain", chunkSize=chunk))
    assert channel.sent[-1] == {"type": "file-accept", "data": {"id": "t1", "offset": 0}}
    return receiving, channel


def test_a_good_file_is_kept_under_its_last_name_component(tmp_path: Path) -> None:
    receiving, channel = start(tmp_path)
    body = bytes(range(100))
    for at in range(0, 100, 40):
        channel.deliver(body[at : at + 40])
    channel.deliver(msg("file-end", sha256=hashlib.sha256(body).hexdigest()))
    assert channel.sent[-1]["type"] == "file-done"
    assert (tmp_path / "a.txt").read_bytes() == body
    assert receiving.done[0].state == "done"


@pytest.mark.parametrize(
    ("feed", "reason"),
    [
        ([b"x" * 41], "a piece of 41 bytes; it announced at most 40"),
        ([b"x" * 40, b"x" * 40, b"x" * 40], "more than the 100 bytes"),
        ([b"x" * 40, msg("file-end", sha256="0" * 64)], "ended after 40 of 100 bytes"),
        ([b"x" * 40, b"x" * 40, b"x" * 20, msg("file-end", sha256="0" * 64)], DAMAGED),
        (["not json"], UNREADABLE),
        ([json.dumps({"type": "file-end", "data": {"id": "other", "sha256": "0" * 64}})], UNREADABLE),
        ([msg("file-ack", offset=1)], "file-ack at the wrong time"),
    ],
)
def test_bad_input_fails_that_transfer_and_saves_nothing(
    tmp_path: Path, feed: list[Any], reason: str
) -> None:
    receiving, channel = start(tmp_path)
    for item in feed:
        channel.deliver(item)
    assert receiving.done[0].state == "failed"
    assert reason in receiving.done[0].reason
    assert channel.sent[-1]["type"] == "file-error"
    assert list(tmp_path.iterdir()) == []  # no .part, no file


def test_labels_messages_and_names() -> None:
    assert transfer_id_of("file:abc:2") == "abc"
    assert transfer_id_of("file:abc") is None and transfer_id_of("chat") is None
    with pytest.raises(ValueError, match="cannot read"):
        parse(msg("file-offer", name="", size=1, type="", chunkSize=1), "t1")
    assert safe_name("..\\x/.hidden") == "hidden" and safe_name("") == "file"
