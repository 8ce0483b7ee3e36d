"""Test doubles for driving the hub without sockets."""

from __future__ import annotations

import json
from typing import Any

from server.hub import Hub, HubLimits, Peer
from server.outbox import Outbox, deliver


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeConn:
    """Records what the hub delivers to it (via `apply`)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.inbox: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    def send(self, text: str) -> None:
        self.inbox.append(json.loads(text))

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def take_unsent(self) -> list[str]:
        return []

    def take(self) -> list[dict[str, Any]]:
        messages, self.inbox = self.inbox, []
        return messages

    def __repr__(self) -> str:
        return f"FakeConn({self.label})"


def apply(out: Outbox, hub: Hub) -> Outbox:
    """Deliver an Outbox to FakeConns, as the server does."""
    assert all(isinstance(hub.connection(peer_id), FakeConn | None) for peer_id, _ in out.sends)
    deliver(out, hub)
    return out


def make_hub(**limits: Any) -> tuple[Hub, FakeClock]:
    clock = FakeClock()
    config = {"iceServers": [], "maxMessageBytes": 65536, "maxNameLength": 64}
    return Hub(HubLimits(**limits), "v1", config, clock), clock


def join(hub: Hub, label: str, name: str | None = None) -> tuple[Peer, FakeConn]:
    """Connect and (unless name is None) identify; the inbox is emptied."""
    conn = FakeConn(label)
    peer, out, _ = hub.connect(conn)
    apply(out, hub)
    if name is not None:
        apply(hub.receive(peer, json.dumps({"type": "identify", "data": {"id": peer.id, "name": name}})), hub)
    conn.take()
    return peer, conn


def send(hub: Hub, peer: Peer, message: Any) -> Outbox:
    return apply(hub.receive(peer, message if isinstance(message, str) else json.dumps(message)), hub)
