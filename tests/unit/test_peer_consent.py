"""The Python peer takes a `call` message as its own only for a call it dialled,
answered or joined (issue 18, finding 22): the same rule as the browser's."""

from __future__ import annotations

import asyncio
from typing import Any

from lancall_peer.peer import PythonPeer


class Link:
    def __init__(self, ended: bool = False) -> None:
        self.ended = asyncio.Event()
        if ended:
            self.ended.set()
        self.call_id: str | None = None


def peer() -> Any:
    python_peer: Any = PythonPeer("wss://127.0.0.1:1/rtc", "Me")
    python_peer.id = "me"
    return python_peer


def test_a_call_made_around_the_python_peer_is_not_adopted() -> None:
    async def run() -> None:
        me = peer()
        await me._on_call({"id": "forced", "members": ["mallory", "me"]})
        assert me.call_id is None and me.members == []
        me.calls["bob"] = Link()  # dialled Bob (or answered him)
        await me._on_call({"id": "c1", "members": ["mallory", "me"]})
        assert me.call_id is None
        await me._on_call({"id": "c1", "members": ["me", "bob"]})
        assert me.call_id == "c1" and me.members == ["me", "bob"]
        await me._on_call({"id": "c2", "members": ["me", "bob"]})  # another call: not ours
        assert me.call_id == "c1"
        await me._on_call({"id": "c1", "members": ["me", "bob", "cat"]})  # ours, grown
        assert me.members == ["me", "bob", "cat"]
        other = peer()
        other._joining = "c9"
        other.calls.update(ann=Link(), bob=Link())  # links there already: nothing to offer here
        await other._on_call({"id": "c9", "members": ["ann", "bob", "me"]})
        assert other.call_id == "c9"
        ended = peer()
        ended.calls["bob"] = Link(ended=True)
        await ended._on_call({"id": "c1", "members": ["me", "bob"]})
        assert ended.call_id is None

    asyncio.run(run())
