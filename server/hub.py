"""The signalling hub: who is connected, under which name, and where each message goes.

Plain Python with no sockets: every operation takes the current time and returns an
`Outbox` of frames to send and sockets to close; the WebSocket adapter (`rtc.py`) and
in-process peers (`echo.py`) deliver it. Tests drive the hub directly.

Lifecycle of a peer (PROTOCOL.md §1):
    connect()  -> `ready` (id, token, version, config); not yet listed
    identify   -> listed: gets the current peer list, everyone else gets its `peer`
    disconnect -> stays listed for `resume_grace` seconds; a reconnect with its token
                  takes the same id back and nobody notices
    expire()   -> grace over: removed and announced with `remove: true`
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import protocol
from .protocol import Identify, ProtocolError, Relay
from .ratelimit import TokenBucket, Verdict

log = logging.getLogger("server.hub")

# WebSocket close codes the hub asks for.
CLOSE_POLICY = 1008  # sustained abuse of the rate limit
CLOSE_REPLACED = 4001  # the same peer resumed on a newer socket

PENDING_LIMIT = 64  # frames kept for a peer in its grace period, delivered on resume


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Connection(Protocol):
    """One socket (or in-process pipe) to one peer. The hub only compares identities;
    `rtc.py` and `echo.py` implement the actual delivery."""

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(slots=True)
class Outbox:
    """What an operation wants done: frames to send, then sockets to close."""

    sends: list[tuple[Connection, str]] = field(default_factory=list)
    closes: list[tuple[Connection, int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sends or self.closes)


@dataclass(slots=True)
class HubLimits:
    max_name_length: int = 64
    rate_limit: float = 50.0
    rate_burst: int = 200
    resume_grace: float = 20.0


@dataclass(slots=True, eq=False)
class Peer:
    id: str
    token: str
    kind: str
    bucket: TokenBucket
    conn: Connection | None
    token_hash: str = ""  # key of `Hub._tokens`; survives a restart, the token does not
    name: str | None = None  # None until the first identify: not listed
    gone_since: float | None = None  # set while the socket is gone (grace period)
    listed_on_socket: bool = False  # the current socket has received the peer list
    pending: deque[str] = field(default_factory=lambda: deque(maxlen=PENDING_LIMIT))

    @property
    def identified(self) -> bool:
        return self.name is not None


class Hub:
    def __init__(
        self,
        limits: HubLimits,
        version: str,
        client_config: dict[str, Any],
        clock: Callable[[], float],
    ) -> None:
        self.limits = limits
        self.version = version
        self.client_config = client_config
        self.clock = clock
        self._peers: dict[str, Peer] = {}  # id -> peer, listed or not, live or in grace
        self._tokens: dict[str, str] = {}  # sha256(resume token) -> id
        self._by_conn: dict[int, Peer] = {}  # id(conn) -> peer, live sockets only

    # --- queries ----------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Live sockets (peers in their grace period do not count)."""
        return len(self._by_conn)

    def peer(self, peer_id: str) -> Peer | None:
        return self._peers.get(peer_id)

    def listed(self) -> list[Peer]:
        """Identified peers, as everyone else sees them, in joining order."""
        return [p for p in self._peers.values() if p.identified]

    # --- lifecycle --------------------------------------------------------------------

    def connect(
        self, conn: Connection, resume_token: str | None = None, kind: str = "browser"
    ) -> tuple[Peer, Outbox, bool]:
        """Attach a new socket. Returns the peer, the `ready` to send, and whether the
        id was resumed."""
        now = self.clock()
        out = Outbox()
        peer = self._resumable(resume_token)
        resumed = peer is not None
        if peer is None:
            peer = Peer(
                id=str(uuid.uuid4()),
                token="",
                kind=kind,
                bucket=TokenBucket(self.limits.rate_limit, self.limits.rate_burst, now),
                conn=conn,
            )
            self._peers[peer.id] = peer
        else:
            self._tokens.pop(peer.token_hash, None)
            if peer.conn is not None:  # the old socket is half-open; the new one wins
                out.closes.append((peer.conn, CLOSE_REPLACED, "resumed elsewhere"))
                self._by_conn.pop(id(peer.conn), None)
            peer.conn = conn
            peer.gone_since = None
            peer.listed_on_socket = False
        peer.token = secrets.token_urlsafe(24)  # 192 bits; a resume consumes the old one
        peer.token_hash = _token_key(peer.token)
        self._tokens[peer.token_hash] = peer.id
        self._by_conn[id(conn)] = peer
        out.sends.append((conn, self._ready(peer)))
        while peer.pending:  # what was relayed to it while its socket was gone
            out.sends.append((conn, peer.pending.popleft()))
        return peer, out, resumed

    def disconnect(self, peer: Peer, conn: Connection) -> Outbox:
        """The socket `conn` of `peer` closed. Starts the grace period."""
        if peer.conn is not conn:  # already replaced by a resumed socket
            return Outbox()
        self._by_conn.pop(id(conn), None)
        peer.conn = None
        peer.gone_since = self.clock()
        if self.limits.resume_grace <= 0:
            return self._remove(peer)
        return Outbox()

    def expire(self) -> Outbox:
        """Remove peers whose grace period is over and announce them."""
        now = self.clock()
        deadline = now - self.limits.resume_grace
        out = Outbox()
        for peer in [p for p in self._peers.values() if p.gone_since is not None]:
            if peer.gone_since is not None and peer.gone_since <= deadline:
                removed = self._remove(peer)
                out.sends.extend(removed.sends)
        return out

    def next_expiry(self) -> float | None:
        """When `expire` next has work to do (clock time), or None."""
        gone = [p.gone_since for p in self._peers.values() if p.gone_since is not None]
        return min(gone) + self.limits.resume_grace if gone else None

    def set_version(self, version: str) -> Outbox:
        """New client assets: every open socket gets a fresh `ready` (same id)."""
        self.version = version
        return Outbox(sends=[(p.conn, self._ready(p)) for p in self._by_conn.values() if p.conn])

    # --- messages ---------------------------------------------------------------------

    def receive(self, peer: Peer, text: str) -> Outbox:
        """Handle one text frame from `peer`. Never raises on client input."""
        conn = peer.conn
        if conn is None:
            return Outbox()
        verdict = peer.bucket.take(self.clock())
        if verdict is not Verdict.ALLOW:
            return self._throttle(peer, conn, verdict)
        try:
            message = protocol.parse(text)
            if isinstance(message, Identify):
                return self._identify(peer, conn, message)
            return self._relay(peer, message)
        except ProtocolError as exc:
            log.info("event=error peer=%s code=%s ref=%s", peer.id, exc.code, exc.ref or "-")
            return Outbox(sends=[(conn, protocol.error(exc.code, exc.message, exc.ref))])

    def receive_binary(self, peer: Peer) -> Outbox:
        if peer.conn is None:
            return Outbox()
        if (verdict := peer.bucket.take(self.clock())) is not Verdict.ALLOW:
            return self._throttle(peer, peer.conn, verdict)
        text = protocol.error(
            protocol.BAD_MESSAGE, "binary frames are not part of the protocol; send JSON text"
        )
        return Outbox(sends=[(peer.conn, text)])

    def _throttle(self, peer: Peer, conn: Connection, verdict: Verdict) -> Outbox:
        if verdict is Verdict.CLOSE:
            log.warning("event=rate-close peer=%s", peer.id)
            return Outbox(closes=[(conn, CLOSE_POLICY, "rate limit exceeded")])
        if verdict is Verdict.DROP_AND_WARN:
            log.info("event=rate-limited peer=%s", peer.id)
            text = protocol.error(
                protocol.RATE_LIMITED,
                f"more than {self.limits.rate_limit:g} messages/s; messages are being dropped",
            )
            return Outbox(sends=[(conn, text)])
        return Outbox()

    def _identify(self, peer: Peer, conn: Connection, message: Identify) -> Outbox:
        name = protocol.clean_name(message.name, self.limits.max_name_length)
        out = Outbox()
        if not peer.listed_on_socket:
            # A newcomer (or a resumed socket, which may have missed changes) learns
            # who is here before anyone learns about it.
            peer.listed_on_socket = True
            for other in self._peers.values():
                if other is not peer and other.name is not None:
                    out.sends.append((conn, protocol.peer(other.id, other.name, other.kind)))
        if name != peer.name:
            peer.name = name
            announcement = protocol.peer(peer.id, name, peer.kind)
            for other in self._by_conn.values():
                if other is not peer and other.name is not None and other.conn is not None:
                    out.sends.append((other.conn, announcement))
        return out

    def _relay(self, sender: Peer, message: Relay) -> Outbox:
        if sender.name is None:
            raise ProtocolError(
                protocol.NOT_IDENTIFIED, "send 'identify' before relaying messages", message.type
            )
        target = self._peers.get(message.target)
        if target is None or target.name is None or target is sender:
            raise ProtocolError(
                protocol.UNKNOWN_PEER,
                f"no peer {message.target[:40]!r} is connected",
                message.type,
            )
        text = protocol.relay(message, sender.id)
        if target.conn is None:  # in its grace period: deliver on resume
            target.pending.append(text)
            return Outbox()
        return Outbox(sends=[(target.conn, text)])

    # --- surviving a restart ------------------------------------------------------------

    def export_state(self, wall_now: float) -> dict[str, Any]:
        """Listed peers and their token hashes (never tokens), for `import_state` in the
        next process: a restarted server then looks like a short network blip."""
        now = self.clock()
        peers = []
        for peer in self._peers.values():
            if peer.name is None or peer.kind != "browser":
                continue  # bots rejoin by themselves
            gone_for = 0.0 if peer.gone_since is None else now - peer.gone_since
            peers.append(
                {
                    "id": peer.id,
                    "name": peer.name,
                    "kind": peer.kind,
                    "token_hash": peer.token_hash,
                    "gone_for": round(gone_for, 3),
                }
            )
        return {"saved_at": wall_now, "peers": peers}

    def import_state(self, state: dict[str, Any], wall_now: float) -> int:
        """Restore peers saved by `export_state` into their grace period. Returns how
        many are still within it. Malformed state is ignored, never fatal."""
        now = self.clock()
        restored = 0
        try:
            downtime = max(0.0, wall_now - float(state["saved_at"]))
            for item in state["peers"]:
                gone_for = downtime + float(item["gone_for"])
                if gone_for >= self.limits.resume_grace or item["id"] in self._peers:
                    continue
                peer = Peer(
                    id=str(item["id"]),
                    token="",
                    kind=str(item["kind"]),
                    bucket=TokenBucket(self.limits.rate_limit, self.limits.rate_burst, now),
                    conn=None,
                    token_hash=str(item["token_hash"]),
                    name=str(item["name"]),
                    gone_since=now - gone_for,
                )
                self._peers[peer.id] = peer
                self._tokens[peer.token_hash] = peer.id
                restored += 1
        except (KeyError, TypeError, ValueError):
            log.warning("event=state-ignored reason=malformed")
        return restored

    # --- internals --------------------------------------------------------------------

    def _ready(self, peer: Peer) -> str:
        return protocol.ready(self.version, peer.id, peer.token, self.client_config)

    def _resumable(self, token: str | None) -> Peer | None:
        if not token:
            return None
        peer_id = self._tokens.get(_token_key(token))
        return self._peers.get(peer_id) if peer_id else None

    def _remove(self, peer: Peer) -> Outbox:
        self._peers.pop(peer.id, None)
        self._tokens.pop(peer.token_hash, None)
        if peer.conn is not None:
            self._by_conn.pop(id(peer.conn), None)
        out = Outbox()
        if peer.name is not None:
            announcement = protocol.peer(peer.id, peer.name, peer.kind, remove=True)
            for other in self._by_conn.values():
                if other.name is not None and other.conn is not None:
                    out.sends.append((other.conn, announcement))
        return out
