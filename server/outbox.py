"""What the hub wants done, and the one place that does it.

The hub (`hub.py`) decides; it never touches a socket. Each of its operations returns an
`Outbox`: frames addressed to peer ids, then connections to close. `deliver` hands each
frame to the connection that currently holds that id. Every `Connection` only queues
(bounded, see `rtc.WebSocketConnection`), so delivering never waits for any one socket:
a slow or dead reader cannot stall the others or the task that delivers.

This is the seam for what comes next: a room is an audience (a list of ids) chosen in
`Hub`, and a second server instance is "ids not held here go to the bus" in `deliver`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Connection(Protocol):
    """One socket (or in-process pipe) to one peer. Both calls return at once."""

    def send(self, text: str) -> None:
        """Queue one frame. A connection that cannot keep up closes itself."""

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued."""

    def take_unsent(self) -> list[str]:
        """Frames queued but never written (the socket died first), oldest first; the
        hub holds them for the peer's resume so nothing accepted is lost."""


class Directory(Protocol):
    """Who holds a peer id on this instance (the hub)."""

    def connection(self, peer_id: str) -> Connection | None: ...


@dataclass(slots=True)
class Outbox:
    """What an operation wants done: frames to send (by peer id), then sockets to close."""

    sends: list[tuple[str, str]] = field(default_factory=list)
    closes: list[tuple[Connection, int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sends or self.closes)

    def send(self, peer_id: str, text: str) -> Outbox:
        self.sends.append((peer_id, text))
        return self

    def close(self, conn: Connection, code: int, reason: str) -> Outbox:
        self.closes.append((conn, code, reason))
        return self

    def extend(self, other: Outbox) -> Outbox:
        self.sends.extend(other.sends)
        self.closes.extend(other.closes)
        return self


def deliver(out: Outbox, directory: Directory) -> None:
    """Queue each frame on the connection holding its peer id, in order, then close what
    was asked. Never waits: an id with no connection here has nothing to receive it."""
    for peer_id, text in out.sends:
        conn = directory.connection(peer_id)
        if conn is not None:
            conn.send(text)
    for conn, code, reason in out.closes:
        conn.close(code, reason)
