"""Who the hub knows: a peer (a browser tab, a bot, or a mirror of a peer another
instance holds), the limits it is held to, and what instances tell each other about
peers. Data only; the hub (`hub.py`) and the calls (`rooms.py`) act on it."""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .outbox import Connection
from .protocol import Identify
from .ratelimit import TokenBucket

if TYPE_CHECKING:
    from .rooms import Room

PENDING_LIMIT = 64  # frames held for a peer in its grace period, delivered on resume
IN_PROCESS = "in-process"  # the address of peers that live inside the server (bots)


def sees(one: Peer, other: Peer) -> bool:
    """Whether two peers see each other: the same space (docs/protocol.md §11). The
    server's bots are in every space. The rule for lists, relays and invitations."""
    return one.space == other.space or one.kind == "bot" or other.kind == "bot"


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class HubLimits:
    max_name_length: int = 64
    rate_limit: float = 50.0  # messages per second per socket
    rate_burst: int = 200
    address_rate_limit: float = 200.0  # messages per second per client address; 0: off
    rename_rate: float = 1.0  # renames per second per client address; 0: off
    rename_burst: int = 5
    join_rate: float = 5.0  # joins (first identify) per second per client address; 0: off
    join_burst: int = 20
    new_space_rate: float = 6.0  # empty spaces entered per minute per client address; 0: off
    new_space_total: float = 120.0  # the same for all addresses together; 0: off
    resume_grace: float = 20.0
    identify_timeout: float = 10.0
    rejoin_window: float = 10.0  # after `leave`, the token still returns the same id
    max_call_size: int = 6  # members of one call, counting invitations
    ring_timeout: float = 30.0  # an unanswered offer or invitation rings this long (+ RING_SLACK)
    open_space: bool = True  # the open network (no space code) exists
    pending_frames: int = PENDING_LIMIT
    pending_bytes: int = 256 * 1024  # held for one away peer
    pending_total_bytes: int = 32 * 1024 * 1024  # held for all away peers together


@dataclass(frozen=True, slots=True)
class Departed:
    """A peer that left on purpose, remembered briefly by its token hash."""

    id: str
    kind: str
    left_at: float


@dataclass(frozen=True, slots=True)
class MirrorRecord:
    """What other instances know of a peer held elsewhere (`replica.py` carries it,
    `mirrors.py` applies it)."""

    id: str
    name: str
    kind: str
    caps: frozenset[str]
    token_hash: str
    call: str | None = None
    space: str | None = None


class Presence(Protocol):
    """Where the hub reports changes to what other instances mirror (`replica.py`, only
    with REDIS_URL): its own peers' records and the calls. Never called for bots."""

    def peer_up(self, peer: Peer) -> None:
        """`peer` (held here) joined, renamed, changed capabilities or resumed here."""

    def peer_gone(self, peer: Peer, left: bool) -> None:
        """`peer` (held here) was removed: it left on purpose (`left`), or its grace ended."""

    def room_changed(self, room: Room, ended: bool) -> None:
        """A call's membership or invitations changed here, or it ended."""

    def request(self, owner: str, peer_id: str, text: str) -> None:
        """Ask instance `owner`, which decides a call's membership, to handle `text` (an
        invite, join or leave, or a departure or withdrawn invitation seen here) as if
        `peer_id` had sent it there."""


@dataclass(slots=True, eq=False)
class Peer:
    id: str
    token: str
    kind: str
    bucket: TokenBucket
    conn: Connection | None
    address: str = IN_PROCESS
    token_hash: str = ""  # key of `Hub._tokens`; survives a restart, the token does not
    name: str | None = None  # None until the first identify: not listed
    connected_at: float = 0.0
    gone_since: float | None = None  # set while the socket is gone (grace period)
    listed_on_socket: bool = False  # the current socket has received the peer list
    pending: deque[str] = field(default_factory=deque)  # held while away, for the resume
    pending_bytes: int = 0
    deferred: Identify | None = None  # a join waiting for its address's join budget
    caps: frozenset[str] = frozenset()  # from identify: e.g. {"group"}
    call: str | None = None  # the id of the call (Room) it is a member of
    home: str | None = None  # a mirror of a peer another instance holds (its id); None: held here
    space: str | None = None  # its space code; None: the open network (docs/protocol.md §11)

    @property
    def identified(self) -> bool:
        return self.name is not None
