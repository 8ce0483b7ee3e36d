"""The signalling hub: who is connected, under which name, and where each message goes.

Plain Python with no sockets: every operation takes the current time and returns an
`Outbox` (`outbox.py`) of frames addressed to peer ids and connections to close;
`outbox.deliver` hands them to the sockets (`rtc.py`) and in-process peers (`echo.py`).
Tests drive the hub directly.

Lifecycle of a peer (docs/protocol.md §1):
    connect()  -> `ready` (id, token, version, config); not yet listed; closed if it
                  does not identify within `identify_timeout`
    identify   -> listed: gets the current peer list, everyone else gets its `peer`
    leave      -> removed and announced at once (a tab closed on purpose); for
                  `rejoin_window` seconds its token still brings the same id back (a
                  reload, which a page cannot tell from closing), as a new join
    disconnect -> stays listed for `resume_grace` seconds; a reconnect with its token
                  takes the same id back and nobody notices; relays to it are held
    expire()   -> grace over: removed and announced with `remove: true`

Who hears what is decided in one place, `audience()`: the listed peers of the same
space (docs/protocol.md §11; `None` is the open network). `sees` (`peers.py`) is the
same rule for lists and relays; bots are in every space.

Calls (docs/protocol.md §8) are `rooms.py`'s: the hub hands it relays, invitations and
its peers' comings and goings. Peers and limits are data in `peers.py`; saving and
restoring them across a restart is `state.py`'s. With several instances the peers the
others hold are listed here like any other, as mirrors; `mirrors.py` (`hub.mirrors`)
tells the others of this hub's own peers and keeps the mirrors as they say, through the
few operations below that take a peer in (`track`) or let one go (`let_go`, `remove`).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from . import protocol
from .budgets import AddressBudgets
from .mirrors import Mirrors
from .outbox import Connection, Outbox
from .peers import (
    IN_PROCESS,
    PENDING_LIMIT,
    Departed,
    HubLimits,
    Peer,
    Presence,
    sees,
    token_key,
)
from .protocol import Identify, Invite, Join, Leave, LeaveCall, Ping, ProtocolError, Relay
from .ratelimit import TokenBucket, Verdict
from .rooms import Room, Rooms

__all__ = ["IN_PROCESS", "PENDING_LIMIT", "Hub", "HubLimits", "Peer", "Room"]

log = logging.getLogger("server.hub")

# WebSocket close codes the hub asks for.
CLOSE_NORMAL = 1000  # the peer left on purpose
CLOSE_POLICY = 1008  # sustained abuse of the rate limit, or no identify in time
CLOSE_REPLACED = 4001  # the same peer resumed on a newer socket
CLOSE_TRY_AGAIN = 1013  # shed at MAX_CLIENTS for someone else (its address holds too many)


def _kind(message: Invite | Join | LeaveCall) -> str:
    return {Invite: "invite", Join: "join", LeaveCall: "leave-call"}[type(message)]


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
        self._unidentified: dict[str, Peer] = {}  # live, not yet identified, oldest first
        self._deferred: dict[str, Peer] = {}  # joins waiting for their address's budget
        self._addresses = AddressBudgets(limits, clock)  # per client address (budgets.py)
        self._departed: dict[str, Departed] = {}  # token hash -> who left on purpose, oldest first
        self._reserved: set[str] = set()  # name keys of the bots' names
        self._pending_total = 0
        self.changes = 0  # bumped whenever the listed peers change (state.py saves then)
        self.relayed = 0  # relay messages accepted (metrics.py)
        self.errors: Counter[str] = Counter()  # refusals by error code (metrics.py)
        self.presence: Presence | None = None  # set by replica.py with REDIS_URL; None: one instance
        self.instance: str | None = None  # this instance's id among several (cluster.py)
        # What a space code is kept as: itself, or among instances a keyed tag (replica.py),
        # so Redis never holds a code.
        self.space_key: Callable[[str], str] = lambda code: code
        total = limits.new_space_total
        self._new_spaces = TokenBucket(total / 60, max(1, int(total)), clock()) if total > 0 else None
        self.rooms = Rooms(self)  # the calls (rooms.py)
        self.mirrors = Mirrors(self)  # other instances' peers (mirrors.py)

    # --- queries ----------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Live sockets (peers in their grace period do not count)."""
        return len(self._by_conn)

    @property
    def pending_bytes(self) -> int:
        """Bytes held for peers in their grace period, all together."""
        return self._pending_total

    def peer(self, peer_id: str) -> Peer | None:
        return self._peers.get(peer_id)

    def room(self, call_id: str) -> Room | None:
        return self.rooms.get(call_id)

    @property
    def calls(self) -> list[Room]:
        return self.rooms.all

    def connection(self, peer_id: str) -> Connection | None:
        """The live connection holding `peer_id` here (`outbox.Directory`)."""
        peer = self._peers.get(peer_id)
        return peer.conn if peer is not None else None

    def listed(self) -> list[Peer]:
        """Identified peers, as everyone else sees them, in joining order."""
        return [p for p in self._peers.values() if p.identified]

    def audience(self, about: Peer) -> Iterator[str]:
        """Who hears an announcement about `about` (join, rename, leave): every other
        listed peer with a live socket in the same space. The one place that decides it."""
        for other in self._by_conn.values():
            if other is not about and other.name is not None and sees(other, about):
                yield other.id

    # --- lifecycle --------------------------------------------------------------------

    def connect(
        self,
        conn: Connection,
        resume_token: str | None = None,
        kind: str = "browser",
        address: str = IN_PROCESS,
    ) -> tuple[Peer, Outbox, bool]:
        """Attach a new socket. Returns the peer, the `ready` to send, and whether the
        id was resumed."""
        now = self.clock()
        out = Outbox()
        peer = self._resumable(resume_token)
        resumed = peer is not None
        if peer is None:
            departed = self._rejoining(resume_token)
            peer = Peer(
                id=departed.id if departed else str(uuid.uuid4()),
                token="",
                kind=departed.kind if departed else kind,
                bucket=TokenBucket(self.limits.rate_limit, self.limits.rate_burst, now),
                conn=conn,
                address=address,
            )
            self._peers[peer.id] = peer
        else:
            self._tokens.pop(peer.token_hash, None)
            unsent = self._replace(peer, out)  # an old socket is half-open; the new one wins
            peer.conn = conn
            self.mirrors.resumed_here(peer, now)
            peer.address = address
            peer.gone_since = None
            peer.listed_on_socket = False
            peer.pending.extendleft(reversed(unsent))
        peer.connected_at = now
        peer.token = secrets.token_urlsafe(24)  # 192 bits; a resume consumes the old one
        peer.token_hash = token_key(peer.token)
        self._tokens[peer.token_hash] = peer.id
        self._by_conn[id(conn)] = peer
        self._addresses.of(address).sockets += 1
        if peer.name is None:
            self._unidentified[peer.id] = peer
        out.send(peer.id, self._ready(peer))
        while peer.pending:  # what was relayed to it while its socket was gone
            out.send(peer.id, peer.pending.popleft())
        room = self.rooms.get(peer.call)
        if resumed and room is not None and protocol.GROUP in peer.caps:
            out.send(peer.id, protocol.call(room.id, room.ids))  # e.g. after a server restart
        self._pending_total -= peer.pending_bytes
        peer.pending_bytes = 0
        if resumed:
            self.mirrors.publish_up(peer)  # its new token, and that it is held here now
        return peer, out, resumed

    def shed_for(self, address: str) -> Outbox | None:
        """At MAX_CLIENTS, make room for a socket from `address`: the address holding the
        most sockets loses its newest one, if it holds more than twice what `address`
        would. Sockets from a few addresses then cannot keep everyone else out (issue 18,
        finding 33: 200 idle sockets from 4 addresses refused 80 of 80 honest tries).
        None: nobody holds an unfair share, and the newcomer is refused."""
        would_have = self._addresses.sockets(address) + 1
        heaviest = self._addresses.heaviest(besides=address)
        if heaviest is None or self._addresses.sockets(heaviest) <= 2 * would_have:
            return None
        newest = max(
            (p for p in self._by_conn.values() if p.address == heaviest and p.conn is not None),
            key=lambda p: p.connected_at,
            default=None,
        )
        if newest is None or newest.conn is None:
            return None
        log.warning(
            "event=shed addr=%s sockets=%d peer=%s for=%s",
            heaviest,
            self._addresses.sockets(heaviest),
            newest.id,
            address,
        )
        return Outbox().close(newest.conn, CLOSE_TRY_AGAIN, "server full: too many sockets from one address")

    def disconnect(self, peer: Peer, conn: Connection) -> Outbox:
        """The socket `conn` of `peer` closed. Starts the grace period; what was queued
        on it but never written is held for the resume."""
        if peer.conn is not conn:  # already replaced by a resumed socket, or removed
            return Outbox()
        self._by_conn.pop(id(conn), None)
        self._unidentified.pop(peer.id, None)
        self._deferred.pop(peer.id, None)
        self._addresses.release(peer.address)
        peer.conn = None
        peer.gone_since = self.clock()
        if peer.name is None or self.limits.resume_grace <= 0:
            return self.remove(peer)
        for text in conn.take_unsent():
            peer.pending.append(text)
            peer.pending_bytes += len(text)
            self._pending_total += len(text)
        return Outbox()

    def expire(self) -> Outbox:
        """Remove peers whose grace period is over and announce them; close sockets that
        never identified."""
        now = self.clock()
        out = Outbox()
        deadline = now - self.limits.resume_grace
        for peer in [p for p in self._peers.values() if p.gone_since is not None]:
            if peer.gone_since is not None and peer.gone_since <= deadline:
                out.extend(self.remove(peer))
        if self._deferred:
            out.extend(self._admit_deferred())
        silent_since = now - self.limits.identify_timeout
        while self._unidentified:
            peer = next(iter(self._unidentified.values()))
            if peer.connected_at > silent_since:
                break
            del self._unidentified[peer.id]
            if peer.conn is not None:
                log.info("event=identify-timeout peer=%s addr=%s", peer.id, peer.address)
                out.close(peer.conn, CLOSE_POLICY, "identify timeout")
        left_before = now - self.limits.rejoin_window
        while self._departed:
            token_hash, departed = next(iter(self._departed.items()))
            if departed.left_at > left_before:
                break
            del self._departed[token_hash]
        self._addresses.sweep(now)
        self.rooms.sweep(now)
        return out

    def next_expiry(self) -> float | None:
        """When `expire` next has work to do (clock time), or None."""
        times = [p.gone_since + self.limits.resume_grace for p in self._peers.values() if p.gone_since]
        if self._unidentified:
            first = next(iter(self._unidentified.values()))
            times.append(first.connected_at + self.limits.identify_timeout)
        if self._deferred:
            times.append(self.clock() + 1.0 / max(self.limits.join_rate, 1.0))
        return min(times) if times else None

    def set_version(self, version: str) -> Outbox:
        """New client assets: every open socket gets a fresh `ready` (same id)."""
        self.version = version
        return Outbox(sends=[(p.id, self._ready(p)) for p in self._by_conn.values()])

    def reserve_name(self, name: str) -> None:
        """Names nobody else may take (the bots'), compared by `protocol.name_key`."""
        self._reserved.add(protocol.name_key(name))

    # --- messages ---------------------------------------------------------------------

    def receive(self, peer: Peer, text: str) -> Outbox:
        """Handle one text frame from `peer`. Never raises on client input."""
        conn = peer.conn
        if conn is None:
            return Outbox()
        verdict = self._take(peer)
        if verdict is not Verdict.ALLOW:
            return self._throttle(peer, conn, verdict)
        try:
            message = protocol.parse(text)
            if isinstance(message, Relay):
                return self._relay(peer, message)
            if isinstance(message, Identify):
                return self._identify(peer, message)
            if isinstance(message, Ping):
                return Outbox().send(peer.id, protocol.pong(message.t))
            if isinstance(message, Leave):
                return self._leave(peer, conn)
            if peer.name is None:
                raise ProtocolError(protocol.NOT_IDENTIFIED, "send 'identify' first", _kind(message))
            if self.rooms.forwarded_to_owner(peer, message, text):
                return Outbox()  # decided where the call is owned; its answer comes from there
            return self.rooms.membership(peer, message)
        except ProtocolError as exc:
            log.info("event=error peer=%s code=%s ref=%s", peer.id, exc.code, exc.ref or "-")
            self.errors[exc.code] += 1
            return Outbox().send(peer.id, protocol.error(exc.code, exc.message, exc.ref, exc.target))

    def receive_binary(self, peer: Peer) -> Outbox:
        if peer.conn is None:
            return Outbox()
        if (verdict := self._take(peer)) is not Verdict.ALLOW:
            return self._throttle(peer, peer.conn, verdict)
        text = protocol.error(
            protocol.BAD_MESSAGE, "binary frames are not part of the protocol; send JSON text"
        )
        return Outbox().send(peer.id, text)

    def receive_control(self, peer: Peer) -> tuple[bool, Outbox]:
        """A WebSocket ping or pong from the client: it costs like a message (a ping
        flood is a flood). Returns whether to answer it, and what else to do."""
        if peer.conn is None:
            return False, Outbox()
        verdict = self._take(peer)
        if verdict is Verdict.ALLOW:
            return True, Outbox()
        return False, self._throttle(peer, peer.conn, verdict)

    def _take(self, peer: Peer) -> Verdict:
        if peer.kind == "bot":
            # Server code answering callers one reply per message; the callers are the ones
            # limited. Metering the bot would let their junk get it closed (1008).
            return Verdict.ALLOW
        now = self.clock()
        verdict = peer.bucket.take(now)
        if verdict is not Verdict.ALLOW:
            return verdict
        shared = self._addresses.of(peer.address).messages
        if shared is None:
            return Verdict.ALLOW
        # The address's budget drops (and warns), it never closes: the socket that
        # overdraws it may not be the abuser.
        shared_verdict = shared.take(now)
        return Verdict.DROP if shared_verdict is Verdict.CLOSE else shared_verdict

    def _throttle(self, peer: Peer, conn: Connection, verdict: Verdict) -> Outbox:
        self.errors[protocol.RATE_LIMITED] += 1  # counts dropped messages, not warnings sent
        if verdict is Verdict.CLOSE:
            log.warning("event=rate-close peer=%s addr=%s", peer.id, peer.address)
            return Outbox().close(conn, CLOSE_POLICY, "rate limit exceeded")
        if verdict is Verdict.DROP_AND_WARN:
            log.info("event=rate-limited peer=%s addr=%s", peer.id, peer.address)
            text = protocol.error(
                protocol.RATE_LIMITED,
                f"more than {self.limits.rate_limit:g} messages/s; messages are being dropped",
            )
            return Outbox().send(peer.id, text)
        return Outbox()

    def _identify(self, peer: Peer, message: Identify, admitted: bool = False) -> Outbox:
        name = protocol.clean_name(message.name, self.limits.max_name_length)
        # Bots are in every space; a code is kept as its key (a tag among instances).
        space = None if peer.kind == "bot" or message.space is None else self.space_key(message.space)
        if peer.kind == "bot":
            self.reserve_name(name)
        elif protocol.name_key(name) in self._reserved:
            raise ProtocolError(
                protocol.BAD_NAME, f"{name!r} is the name of a built-in peer; pick another", "identify"
            )
        if space is None and peer.kind != "bot" and not self.limits.open_space:
            self._unidentified.pop(peer.id, None)  # it spoke: it waits for a code, not closed as silent
            raise ProtocolError(
                protocol.SPACE_REQUIRED,
                "This server has no open network: join a space with the code someone gave you",
                "identify",
            )
        if space is not None and space != peer.space and not self._may_enter(peer, space):
            self._unidentified.pop(peer.id, None)  # it spoke: a refusal, not a silent socket
            raise ProtocolError(
                protocol.RATE_LIMITED,
                "Too many new spaces tried from here: check the code and try again in a minute; "
                "the space stays as it was",
                "identify",
            )
        if peer.name is None and not admitted and not self._may_join(peer, message):
            return Outbox()
        moved = peer.name is not None and space != peer.space
        renames = self._addresses.of(peer.address).renames
        if (
            peer.name is not None
            and (moved or name != peer.name)
            and renames is not None
            and renames.take(self.clock()) is not Verdict.ALLOW
        ):
            # A rename (or a move to another space) reaches everyone: its budget is
            # separate, and per address.
            raise ProtocolError(
                protocol.RATE_LIMITED,
                f"changing space more than {self.limits.rename_rate:g} times a second; the space stays"
                if moved
                else f"renaming more than {self.limits.rename_rate:g} times a second; the name stays",
                "identify",
            )
        caps = peer.caps
        if message.caps or peer.name is None:
            peer.caps = message.caps
        out = Outbox()
        if moved:
            self._leave_space(peer, out)
        peer.space = space
        if not peer.listed_on_socket:
            # A newcomer (or a resumed socket, which may have missed changes) learns
            # who is here before anyone learns about it.
            peer.listed_on_socket = True
            for other in self._peers.values():
                if other is not peer and other.name is not None and sees(peer, other):
                    out.send(peer.id, self._peer_frame(other, protocol.GROUP in peer.caps))
        if name == peer.name and not moved:
            if peer.caps != caps:
                self.mirrors.publish_up(peer)
            return out
        peer.name = name
        self._unidentified.pop(peer.id, None)
        self.changes += 1
        self.mirrors.publish_up(peer)
        return self.announce(out, peer, everyone=True)

    def _leave_space(self, peer: Peer, out: Outbox) -> None:
        """`peer` moves to another space (docs/protocol.md §11): it leaves its call and
        invitations (nobody there can reach it now), its old space hears it leave, and it
        hears its old space go; the caller then lists the new space to it."""
        out.extend(self.rooms.leave_everything(peer))
        self.announce_gone(out, peer)
        if peer.conn is not None:
            for other in self._peers.values():
                if other is not peer and other.name and other.kind != "bot" and sees(peer, other):
                    out.send(peer.id, protocol.peer(other.id, other.name, other.kind, remove=True))
        peer.listed_on_socket = False

    def announce_gone(self, out: Outbox, peer: Peer) -> None:
        """Its audience hears that `peer` is gone (it left, or left their space)."""
        if peer.name is not None:
            gone = protocol.peer(peer.id, peer.name, peer.kind, remove=True)
            out.sends.extend((other, gone) for other in self.audience(peer))

    def _may_enter(self, peer: Peer, space: str) -> bool:
        """Entering a space nobody is in is what guessing codes looks like (a wrong code
        finds an empty space): one address gets `new_space_rate` of them a minute, and all
        addresses together `new_space_total` (issue 18, finding 28). A space with someone
        in it is always open to its code."""
        if any(p.space == space and p.name is not None and p is not peer for p in self._peers.values()):
            return True
        now = self.clock()
        mine = self._addresses.of(peer.address).new_spaces
        if mine is not None and not mine.has_token(now):
            return False
        if self._new_spaces is not None and self._new_spaces.take(now) is not Verdict.ALLOW:
            return False
        if mine is not None:
            mine.take(now)
        return True

    def _may_join(self, peer: Peer, message: Identify) -> bool:
        """A join (and later its leave) reaches everyone: one address gets `join_rate` of
        them a second. Past that the join waits, unseen by the client, until `expire`
        finds budget for it; the socket no longer counts as silent meanwhile."""
        joins = self._addresses.of(peer.address).joins
        if peer.id not in self._deferred and (joins is None or joins.take(self.clock()) is Verdict.ALLOW):
            return True
        peer.deferred = message  # the newest name, if it identifies again while waiting
        self._deferred[peer.id] = peer
        self._unidentified.pop(peer.id, None)
        return False

    def _admit_deferred(self) -> Outbox:
        out = Outbox()
        now = self.clock()
        for peer in list(self._deferred.values()):
            joins = self._addresses.of(peer.address).joins
            if peer.conn is None or peer.deferred is None:
                del self._deferred[peer.id]
            elif joins is None or joins.take(now) is Verdict.ALLOW:
                message, peer.deferred = peer.deferred, None
                del self._deferred[peer.id]
                try:
                    out.extend(self._identify(peer, message, admitted=True))
                except ProtocolError:  # its name was taken by a bot meanwhile: rare, quiet
                    continue
        return out

    def _leave(self, peer: Peer, conn: Connection) -> Outbox:
        log.info("event=leave peer=%s", peer.id)
        self.depart(peer)
        out = self.remove(peer, left=True)
        return out.close(conn, CLOSE_NORMAL, "left")

    def depart(self, peer: Peer) -> None:
        """`peer` left on purpose: for `rejoin_window` its token brings its id back (a reload)."""
        if self.limits.rejoin_window > 0:
            self._departed[peer.token_hash] = Departed(peer.id, peer.kind, self.clock())

    def _relay(self, sender: Peer, message: Relay) -> Outbox:
        if sender.name is None:
            raise ProtocolError(
                protocol.NOT_IDENTIFIED, "send 'identify' before relaying messages", message.type
            )
        target = self._peers.get(message.target)
        if target is None or target.name is None or target is sender or not sees(sender, target):
            raise ProtocolError(
                protocol.UNKNOWN_PEER,
                f"no peer {message.target[:40]!r} is connected",
                message.type,
                message.target[:40],
            )
        out = self._scope(sender, target, message)
        text = protocol.relay(message, sender.id)
        self.relayed += 1
        if target.conn is not None:  # a socket here, or a mirror's bus (replica.py)
            return Outbox().send(target.id, text).extend(out)
        return self.hold(sender.id, target, message.type, text).extend(out)

    def _scope(self, sender: Peer, target: Peer, message: Relay) -> Outbox:
        """`space-move` only between two people of one space (the open network has no code
        to move); every other relay is about calls and links (`Rooms.check_relay`)."""
        if message.type != "space-move":
            return self.rooms.check_relay(sender, target, message)
        if sender.space is None or sender.space != target.space:
            text = "space-move is for someone in your own space"
            raise ProtocolError(protocol.BAD_MESSAGE, text, message.type, target.id)
        return Outbox()

    def _peer_frame(self, peer: Peer, with_call: bool) -> str:
        assert peer.name is not None
        return protocol.peer(peer.id, peer.name, peer.kind, in_call=with_call and peer.call is not None)

    def announce(self, out: Outbox, peer: Peer, everyone: bool = False) -> Outbox:
        """Tell the audience who `peer` is now: a join or rename reaches `everyone`; a
        change of "in a call" only those who speak group calls (an original-protocol
        client sees exactly the frames it always did)."""
        if peer.name is None:
            return out
        plain = self._peer_frame(peer, False)
        rich = self._peer_frame(peer, True)
        for other_id in self.audience(peer):
            group = protocol.GROUP in self._peers[other_id].caps
            if everyone or group:
                out.send(other_id, rich if group else plain)
        return out

    def keep(self, peer: Peer, text: str) -> bool:
        """Hold a frame for `peer`'s resume (it is in its grace period), within bounds:
        whether it was kept. `hold` for a relay; alone for what no one sent (a call that
        ended meanwhile, which a resume could not tell otherwise)."""
        limits = self.limits
        size = len(text)
        if (
            len(peer.pending) >= limits.pending_frames
            or peer.pending_bytes + size > limits.pending_bytes
            or self._pending_total + size > limits.pending_total_bytes
        ):
            return False
        peer.pending.append(text)
        peer.pending_bytes += size
        self._pending_total += size
        return True

    def hold(self, sender_id: str, target: Peer, kind: str, text: str) -> Outbox:
        """`target` is in its grace period: keep the frame for its resume, within bounds,
        and tell the sender either way."""
        if not self.keep(target, text):
            log.info("event=undelivered peer=%s target=%s type=%s", sender_id, target.id, kind)
            notice = protocol.error(
                protocol.UNDELIVERED,
                f"{target.name} is not connected and has too many messages waiting; this one was dropped",
                kind,
                target.id,
            )
            return Outbox().send(sender_id, notice)
        if kind == "icecandidate":  # a trickle of candidates needs no trickle of notices
            return Outbox()
        notice = protocol.error(
            protocol.PEER_AWAY,
            f"{target.name} is not connected right now; the message is kept for when they are back",
            kind,
            target.id,
        )
        return Outbox().send(sender_id, notice)

    # --- surviving a restart ------------------------------------------------------------

    def restorable(self, peer_id: str, token_hash: str, name: str) -> bool:
        """Whether a peer saved before a restart can come back (`state.import_state`):
        its id and token are free, and its name is not a bot's."""
        free = peer_id not in self._peers and token_hash not in self._tokens
        return free and protocol.name_key(name) not in self._reserved

    def restore(self, peer: Peer) -> None:
        """A peer saved before a restart, back in its grace period."""
        self._peers[peer.id] = peer
        self._tokens[peer.token_hash] = peer.id

    # --- peers other instances hold (`mirrors.py`, only with REDIS_URL) -------------------

    def track(self, peer: Peer, token_hash: str) -> None:
        """Know `peer` by its id, and resume it with the token behind `token_hash` (a
        mirror's, from its record) instead of the one it had."""
        self._tokens.pop(peer.token_hash, None)
        peer.token_hash = token_hash
        self._peers[peer.id] = peer
        self._tokens[token_hash] = peer.id

    def let_go(self, peer: Peer, out: Outbox) -> list[str]:
        """Stop holding `peer` here: another instance took it over with its token. Returns
        the frames waiting for it, oldest first."""
        held = self._replace(peer, out) + self._unhold(peer)
        peer.address = IN_PROCESS
        return held

    # --- internals --------------------------------------------------------------------

    def _ready(self, peer: Peer) -> str:
        return protocol.ready(self.version, peer.id, peer.token, self.client_config)

    def _resumable(self, token: str | None) -> Peer | None:
        if not token:
            return None
        peer_id = self._tokens.get(token_key(token))
        return self._peers.get(peer_id) if peer_id else None

    def _rejoining(self, token: str | None) -> Departed | None:
        """The peer this token belonged to, if it left on purpose moments ago (a reload)."""
        if not token:
            return None
        departed = self._departed.pop(token_key(token), None)
        if departed is None or departed.id in self._peers:
            return None
        if self.clock() - departed.left_at > self.limits.rejoin_window:
            return None
        return departed

    def remove(self, peer: Peer, left: bool = False) -> Outbox:
        """Forget `peer` (it `left` on purpose, its grace period ended, or its home instance
        removed it) and announce it gone."""
        self._peers.pop(peer.id, None)
        self._tokens.pop(peer.token_hash, None)
        self._unhold(peer)
        peer.conn = None
        out = self.rooms.forget(peer)
        if peer.name is not None:
            self.changes += 1
            self.mirrors.publish_gone(peer, left)
            self.announce_gone(out, peer)
        return out

    def _replace(self, peer: Peer, out: Outbox) -> list[str]:
        """Close `peer`'s socket (or a mirror's bus) as replaced: it resumed on a new one,
        here or on another instance. Returns what the old one never wrote."""
        if peer.conn is None:
            return []
        unsent = peer.conn.take_unsent()
        out.close(peer.conn, CLOSE_REPLACED, "resumed elsewhere")
        if self._by_conn.pop(id(peer.conn), None) is not None:  # not a mirror's
            self._addresses.release(peer.address)
        return unsent

    def _unhold(self, peer: Peer) -> list[str]:
        """Drop what the hub keeps for `peer` as one of its own: its socket (and its
        address's count of them), its wait to identify or be admitted, and the frames held
        for its resume (returned, oldest first)."""
        if peer.conn is not None and self._by_conn.pop(id(peer.conn), None) is not None:
            self._addresses.release(peer.address)
        self._unidentified.pop(peer.id, None)
        self._deferred.pop(peer.id, None)
        held = list(peer.pending)
        self._pending_total -= peer.pending_bytes
        peer.pending.clear()
        peer.pending_bytes = 0
        return held
