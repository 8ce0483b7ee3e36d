"""Presence shared between server instances: the events, and what they do to a hub.

Pure code, no Redis (that is `cluster.py`, imported only with REDIS_URL). An instance
publishes an event whenever the hub reports a change (`hub.Presence`): a peer it holds
is up (joined, renamed, new capabilities, resumed here: `up`), is gone (`gone`), or a
call changed (`room`). Every other instance applies it with `apply`: the peer becomes a
*mirror* in its hub (`mirrors.py`), a listed peer whose connection is a `BusConnection`,
so frames `deliver` queues for it travel to its home instance (docs/architecture.md,
"Several instances").

Events are JSON objects with `t` (the kind) and `home` (the instance that sent it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Protocol

from . import protocol
from .hub import Hub, Peer, Room
from .outbox import Outbox
from .peers import MirrorRecord

UP = "up"
GONE = "gone"
ROOM = "room"
DOWN = "down"  # an instance stops on purpose: its peers start their grace period at once


class Bus(Protocol):
    """Sends a frame to a peer held by another instance (`cluster.Cluster`)."""

    def forward(self, home: str, peer_id: str, text: str) -> None: ...

    def others(self) -> list[str]:
        """The other instances this one knows to be up."""
        ...


class BusConnection:
    """The hub `Connection` of a mirror: frames go to the peer's home instance."""

    __slots__ = ("bus", "home", "peer_id")

    def __init__(self, bus: Bus, home: str, peer_id: str) -> None:
        self.bus = bus
        self.home = home
        self.peer_id = peer_id

    def send(self, text: str) -> None:
        self.bus.forward(self.home, self.peer_id, text)

    def close(self, code: int, reason: str) -> None:
        """Nothing to do: the instance that resumed this peer publishes `up`, and its
        old home lets it go then (closing its socket there, if it still has one)."""

    def take_unsent(self) -> list[str]:
        return []


def peer_record(peer: Peer) -> dict[str, Any]:
    return {
        "id": peer.id,
        "name": peer.name,
        "kind": peer.kind,
        "caps": sorted(peer.caps),
        "token_hash": peer.token_hash,
        "call": peer.call,
        "space": peer.space,
    }


def up_event(home: str, peer: Peer) -> str:
    return json.dumps({"t": UP, "home": home, "peer": peer_record(peer)})


def gone_event(home: str, peer: Peer, left: bool) -> str:
    return json.dumps({"t": GONE, "home": home, "id": peer.id, "left": left})


def room_record(room: Room, ended: bool, owner: str) -> dict[str, Any]:
    """A call as its owner publishes it (only the owner does)."""
    members = [] if ended else room.ids
    return {"id": room.id, "members": members, "invited": {} if ended else dict(room.invited), "owner": owner}


def room_event(home: str, room: Room, ended: bool) -> str:
    return json.dumps({"t": ROOM, "home": home, "room": room_record(room, ended, home)})


def down_event(home: str) -> str:
    return json.dumps({"t": DOWN, "home": home})


def mirror_record(item: Any) -> MirrorRecord | None:
    """A peer record from another instance, checked like input (None if malformed)."""
    if not isinstance(item, dict):
        return None
    peer_id, name, kind = item.get("id"), item.get("name"), item.get("kind")
    token_hash, caps, call = item.get("token_hash"), item.get("caps", []), item.get("call")
    if not all(isinstance(v, str) and v for v in (peer_id, name, kind, token_hash)):
        return None
    if not isinstance(caps, list) or not isinstance(call, str | None):
        return None
    space = item.get("space")  # a tag (`space_tag`), never a code
    if space is not None and not (isinstance(space, str) and space.isalnum() and len(space) <= 64):
        return None
    assert isinstance(peer_id, str) and isinstance(name, str) and isinstance(kind, str)
    assert isinstance(token_hash, str)
    return MirrorRecord(
        id=peer_id,
        name=name,
        kind=kind,
        caps=frozenset(c for c in caps[: protocol.MAX_CAPS] if isinstance(c, str)),
        token_hash=token_hash,
        call=call,
        space=space,
    )


def apply_room(hub: Hub, item: Any, home: str | None = None) -> Outbox:
    """A call record (an event's, from `home`, or a snapshot's): its owner is the instance
    that published it."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return Outbox()
    members, invited, owner = item.get("members"), item.get("invited"), item.get("owner", home)
    if not isinstance(members, list) or not isinstance(invited, dict) or not isinstance(owner, str | None):
        return Outbox()
    return hub.mirrors.room(
        item["id"],
        [m for m in members if isinstance(m, str)],
        {k: v for k, v in invited.items() if isinstance(k, str) and isinstance(v, str)},
        owner,
    )


def parse(raw: str | bytes, me: str) -> dict[str, Any] | None:
    """An event from another instance (None for this instance's own and malformed ones)."""
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("t"), str):
        return None
    home = event.get("home")
    return event if isinstance(home, str) and home and home != me else None


def apply(hub: Hub, event: dict[str, Any], bus: Bus) -> Outbox:
    """Apply one event from another instance (`parse`) to `hub`; returns what to deliver here."""
    kind, home = event["t"], event["home"]
    if kind == UP:
        record = mirror_record(event.get("peer"))
        if record is None:
            return Outbox()
        return hub.mirrors.up(record, home, BusConnection(bus, home, record.id))
    if kind == GONE and isinstance(event.get("id"), str):
        return hub.mirrors.gone(event["id"], home, bool(event.get("left")))
    if kind == ROOM:
        return apply_room(hub, event.get("room"), home)
    if kind == DOWN:
        hub.mirrors.orphan(home, bus.others())
    return Outbox()


# --- between instances: signed, and no space code in the clear (issue 18, finding 27) ---
#
# Anyone who can reach Redis could read every peer record (space codes) and publish a
# frame "from Bob" to any instance. Every message and stored record is signed with the
# instances' shared key (CLUSTER_SECRET): an HMAC-SHA256 over where it goes and what it
# says, 128 bits, base64url, before the text. Space codes travel and rest as keyed tags.

SIGNATURE_CHARS = 22  # 16 bytes, base64url without padding


def _signature(secret: bytes, where: str, text: str) -> str:
    mac = hmac.new(secret, f"{where}\n{text}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def sign(secret: bytes, where: str, text: str) -> str:
    return _signature(secret, where, text) + " " + text


def verified(secret: bytes, where: str, raw: str | bytes) -> str | None:
    """The text of a signed message, or None if its signature is not the key's."""
    signed = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    mac, sep, text = signed.partition(" ")
    if not sep or len(mac) != SIGNATURE_CHARS:
        return None
    return text if hmac.compare_digest(_signature(secret, where, text), mac) else None


def space_tag(secret: bytes, code: str) -> str:
    """What stands for a space code everywhere among instances: equal for equal codes,
    and no code can be read back from it without the key."""
    return hmac.new(secret, f"space\n{code}".encode(), hashlib.sha256).hexdigest()[:32]


def frame_message(peer_id: str, text: str) -> str:
    """A frame for a peer another instance holds, on that instance's channel."""
    return f"{peer_id}\n{text}"


# A request for the owner of a call (`Mirrors.on_behalf`), on the owner's channel: marked so
# it is never taken for a frame (a peer id has no "?").
REQUEST_MARK = "?"


def request_message(peer_id: str, text: str) -> str:
    return f"{REQUEST_MARK}{peer_id}\n{text}"


def split_frame(raw: str | bytes) -> tuple[str, str, bool] | None:
    """(peer id, text, whether it is a request for the call's owner), or None."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    peer_id, sep, frame = text.partition("\n")
    request = peer_id.startswith(REQUEST_MARK)
    peer_id = peer_id.removeprefix(REQUEST_MARK)
    return (peer_id, frame, request) if sep and peer_id else None
