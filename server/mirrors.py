"""Mirrors: this instance's side of mirroring peers between instances (only with REDIS_URL).

A mirror is a peer another instance holds, listed in this hub: its `home` is that
instance and its `conn` the bus there (a `replica.BusConnection`). Lists, unknown-peer
checks, relays and calls treat it like any peer; `Hub.audience()` never includes it
(each instance announces to its own sockets), and nobody here publishes about it (its
home does).

Both directions are here: what the others are told of this instance's own peers
(`publish_up`, `publish_gone`, to `hub.presence`), and what they say of theirs, their
presence events through `replica.apply` (`up`, `gone`, `room`; `orphan` for an instance
lost) and their frames and requests through `cluster.py` (`forwarded`, `on_behalf`).

Pure like the hub: no sockets, and what is to be sent comes back as an `Outbox`. The hub
(`hub.py`) owns the peers and their sockets, holds this as `hub.mirrors` and is its
`MirrorHost`; calls stay `rooms.py`'s (`Rooms.mirrored`, `drop_mirror`, `orphaned`,
`on_behalf`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Protocol

from . import protocol
from .outbox import Connection, Outbox
from .peers import HubLimits, MirrorRecord, Peer, Presence
from .ratelimit import TokenBucket
from .rooms import Rooms


class MirrorHost(Protocol):
    """What mirrors need of the hub: its peers and calls, how it takes a peer in and lets
    one go, how it tells people about a peer and holds frames for an away one."""

    limits: HubLimits
    clock: Callable[[], float]
    rooms: Rooms
    changes: int
    presence: Presence | None

    def peer(self, peer_id: str) -> Peer | None: ...

    def listed(self) -> list[Peer]: ...

    def track(self, peer: Peer, token_hash: str) -> None: ...

    def let_go(self, peer: Peer, out: Outbox) -> list[str]: ...

    def depart(self, peer: Peer) -> None: ...

    def remove(self, peer: Peer, left: bool = False) -> Outbox: ...

    def announce(self, out: Outbox, peer: Peer, everyone: bool = False) -> Outbox: ...

    def announce_gone(self, out: Outbox, peer: Peer) -> None: ...

    def keep(self, peer: Peer, text: str) -> bool: ...

    def hold(self, sender_id: str, target: Peer, kind: str, text: str) -> Outbox: ...


class Mirrors:
    """One hub's mirroring: what it tells the other instances of its own peers, and its
    copy of theirs, kept as they say."""

    def __init__(self, host: MirrorHost) -> None:
        self.host = host
        self.bucket = TokenBucket(1.0, 1, 0.0)  # mirrors never send here; one shared bucket

    # --- what the others are told of this instance's peers (`Presence`) -------------------

    def publish_up(self, peer: Peer) -> None:
        """`peer`, held here, joined, renamed, changed capabilities or resumed here."""
        presence = self.host.presence
        if presence is not None and peer.home is None and peer.kind != "bot" and peer.name is not None:
            presence.peer_up(peer)

    def publish_gone(self, peer: Peer, left: bool) -> None:
        """`peer` (listed) was removed: it `left` on purpose, or its grace period ended."""
        presence = self.host.presence
        if presence is not None and peer.home is None and peer.kind != "bot":
            presence.peer_gone(peer, left)

    # --- this instance's copy of the others' peers -----------------------------------------

    def peers(self) -> list[Peer]:
        """The mirrors (every one is listed: a record always has a name)."""
        return [p for p in self.host.listed() if p.home is not None]

    def held_here(self) -> list[Peer]:
        """Listed peers this instance holds (what it publishes after a Redis restart, and
        what `state.py` saves)."""
        return [p for p in self.host.listed() if p.home is None and p.kind != "bot"]

    def resumed_here(self, peer: Peer, now: float) -> None:
        """A peer resumed here is held here now. A mirror (or one orphaned here when its
        instance died) gets its own message budget, not the mirrors' shared 1 message/s
        one (a call's signalling would be dropped)."""
        if peer.bucket is self.bucket:
            peer.bucket = TokenBucket(self.host.limits.rate_limit, self.host.limits.rate_burst, now)
        peer.home = None

    # --- presence events from other instances (`replica.apply`) ----------------------------

    def up(self, record: MirrorRecord, home: str, conn: Connection) -> Outbox:
        """Instance `home` holds this peer now (it joined, renamed or resumed there). A
        peer held here until now was taken over there with its token: it is let go
        quietly (an old socket closed as replaced, what was held for it sent on)."""
        host = self.host
        out = Outbox()
        held: list[str] = []
        peer = host.peer(record.id)
        if peer is None:
            peer = Peer(id=record.id, token="", kind=record.kind, bucket=self.bucket, conn=conn)
        elif peer.home is None:
            held = host.let_go(peer, out)
        host.track(peer, record.token_hash)
        peer.home, peer.conn, peer.gone_since = home, conn, None
        peer.caps = record.caps
        if (room := host.rooms.get(record.call)) is not None:
            room.members.setdefault(peer.id, None)
            peer.call = room.id
        moved = peer.name is not None and record.space != peer.space
        if moved:  # its old space hears it leave, its new one hears it join
            host.announce_gone(out, peer)
        peer.space = record.space
        if record.name != peer.name or moved:
            peer.name = record.name
            host.changes += 1
            host.announce(out, peer, everyone=True)
        for text in held:
            out.send(peer.id, text)  # through the bus to its new home
        return out

    def gone(self, peer_id: str, home: str, left: bool) -> Outbox:
        """Instance `home` removed its peer: announce it here. Its calls are updated by
        the room events `home` sends (which also told the members)."""
        peer = self.host.peer(peer_id)
        if peer is None or peer.home != home:
            return Outbox()  # unknown here, or held elsewhere by now
        if left:  # a reload may land on this instance
            self.host.depart(peer)
        self.host.rooms.drop_mirror(peer)
        return self.host.remove(peer)

    def room(
        self, call_id: str, members: list[str], invited: dict[str, str], owner: str | None = None
    ) -> Outbox:
        """Its owner (another instance) changed a call, or ended it (`Rooms.mirrored`)."""
        return self.host.rooms.mirrored(call_id, members, invited, owner)

    def orphan(self, home: str, others: Iterable[str] = ()) -> int:
        """Instance `home` is gone without a word (killed): its peers start their grace
        period here, as if their sockets had dropped, and can resume on any instance. The
        calls it owned go to the first of the instances left (`others` and this one, by
        id): every instance picks the same one."""
        now, count = self.host.clock(), 0
        for peer in self.host.listed():
            if peer.home == home:
                peer.home, peer.conn, peer.gone_since = None, None, now
                count += 1
        self.host.rooms.orphaned(home, others)
        return count

    # --- what other instances send to this one (`cluster.py`) ------------------------------

    def forwarded(self, peer_id: str, text: str) -> Outbox:
        """A frame another instance sent to `peer_id`, held here: sent on, or held for
        its resume as a relay from this instance would be (the sender, wherever it is,
        hears `peer-away` or `undelivered`)."""
        peer = self.host.peer(peer_id)
        if peer is None or peer.home is not None or peer.name is None:
            return Outbox()  # gone, or taken over elsewhere meanwhile: dropped
        if text.startswith('{"type":"offer"'):
            self.host.rooms.ring_from_elsewhere(peer, text)
        if peer.conn is not None:
            return Outbox().send(peer_id, text)
        try:
            message = json.loads(text)
            kind, data = message["type"], message["data"]
            if kind == "call":
                # A live call is sent again on resume; one that ended meanwhile must be kept.
                if data.get("ended") is True:
                    self.host.keep(peer, text)
                return Outbox()
            sender = data["id"] if kind == "icecandidate" else data["source"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return Outbox()
        if (kind in protocol.RELAY_TYPES or kind == "invite") and isinstance(sender, str):
            return self.host.hold(sender, peer, kind, text)
        return Outbox()

    def on_behalf(self, peer_id: str, text: str) -> Outbox:
        """Another instance asks this one, a call's owner, to act for its peer (`Rooms.on_behalf`)."""
        return self.host.rooms.on_behalf(peer_id, text)
