"""Calls: who is in which, who is invited, and what is still ringing (docs/protocol.md
§8). A 1:1 call becomes a `Room` when the callee's `accept` answers an offer that rang;
members `invite`, invitees `join`, members `leave-call`; relays that name a call pass
only between its members.

With several instances (REDIS_URL) a call belongs to the instance where it was accepted,
its owner: only the owner changes members and invitations and publishes the call; the
others forward their peers' requests to it (`Presence.request`) and apply what it
publishes (`mirrored`).

Pure like the hub: every operation returns an `Outbox`. The hub (`hub.py`) owns the
peers and is this module's `RoomHost`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import protocol
from .outbox import Outbox
from .peers import HubLimits, Peer, Presence, sees
from .protocol import Invite, Join, LeaveCall, ProtocolError, Relay
from .ringing import Ringing

# Between instances only (`Rooms.on_behalf`), never from a client: a member seen leaving
# a call on another instance, and an invitation ended there, told to the call's owner.
ROOM_DEPART = "room-depart"
ROOM_UNINVITE = "room-uninvite"
# An offer or invitation rings for `ring_timeout`, and the callee's page gives it 5 s more
# before it gives up; an answer later than this answers nothing.
RING_SLACK = 10.0

log = logging.getLogger("server.hub")


@dataclass(slots=True, eq=False)
class Room:
    """One call's membership (docs/protocol.md §8)."""

    id: str
    members: dict[str, None] = field(default_factory=dict)  # peer ids, in joining order
    invited: dict[str, str] = field(default_factory=dict)  # invitee id -> inviter id
    invited_until: dict[str, float] = field(default_factory=dict)  # invitee id -> when it stops ringing
    # The instance that decides who is in this call and publishes it (issue 18, finding
    # 26); None: this one. Others forward their peers' invites, joins and departures to it.
    owner: str | None = None

    @property
    def ids(self) -> list[str]:
        return list(self.members)

    def invite(self, invitee: str, inviter: str, until: float) -> None:
        self.invited[invitee] = inviter
        self.invited_until[invitee] = until

    def uninvite(self, invitee: str) -> bool:
        self.invited_until.pop(invitee, None)
        return self.invited.pop(invitee, None) is not None

    def expire_invitations(self, now: float) -> bool:
        """Drop invitations that no longer ring (an invitation lives as long as it rings,
        issue 18 finding 24). Returns whether any went."""
        stale = [i for i in self.invited if self.invited_until.get(i, now + 1) <= now]
        for invitee in stale:
            self.uninvite(invitee)
        return bool(stale)


class RoomHost(Protocol):
    """What calls need of the hub: its peers, its clock and limits, how it tells people
    about a peer and holds frames for an away one, and the other instances."""

    limits: HubLimits
    clock: Callable[[], float]
    presence: Presence | None
    instance: str | None
    errors: Counter[str]

    def peer(self, peer_id: str) -> Peer | None: ...

    def announce(self, out: Outbox, peer: Peer, everyone: bool = False) -> Outbox: ...

    def hold(self, sender_id: str, target: Peer, kind: str, text: str) -> Outbox: ...

    def keep(self, peer: Peer, text: str) -> bool: ...


class Rooms:
    """Every call this instance knows of, and the 1:1 offers still ringing."""

    def __init__(self, host: RoomHost) -> None:
        self.host = host
        self._calls: dict[str, Room] = {}  # call id -> membership
        self.ringing = Ringing(host.limits.ring_timeout + RING_SLACK)  # 1:1 offers not yet answered

    def get(self, call_id: str | None) -> Room | None:
        return self._calls.get(call_id) if call_id is not None else None

    @property
    def all(self) -> list[Room]:
        return list(self._calls.values())

    def check_relay(self, sender: Peer, target: Peer, message: Relay) -> Outbox:
        """Check a relay against call membership and what is ringing, and keep membership
        up to date with the 1:1 calls it sees. Returns what membership changes announce."""
        if message.data.get("link") == protocol.DATA_LINK:  # a data-only link: never a call
            if protocol.DATA not in target.caps:
                raise ProtocolError(
                    protocol.UNSUPPORTED,
                    f"{target.name} uses an app that cannot receive messages or files",
                    message.type,
                    target.id,
                )
            return Outbox()
        call_id = message.data.get("call")
        if call_id is not None:
            return self._call_scoped(sender, target, message, call_id)
        now = self.host.clock()
        shared = self.shared(sender, target)
        if message.type == "offer":
            if shared is None:  # a new call rings; in a call it is a renegotiation
                self.ringing.offered(sender.id, target.id, now)
            return Outbox()
        if message.type == "accept":
            if shared is not None:
                return Outbox()  # the answer to a renegotiation
            if not self.ringing.answered(target.id, sender.id, now):
                # Only an offer the callee accepts makes a call: an answer to nothing would
                # put an idle person into a call they never saw (issue 18, finding 22).
                raise ProtocolError(
                    protocol.NOT_INVITED,
                    f"{target.name} is not calling you (the call may be over)",
                    message.type,
                    target.id,
                )
            return self._start_call(target, sender)
        if message.type == "reject":
            self.ringing.withdrawn(target.id, sender.id)
        elif message.type == "hangup":
            self.ringing.withdrawn(sender.id, target.id)
            if shared is not None and len(shared.members) == 2:
                return self.depart(sender, shared)  # hanging up a call of two ends it
        return Outbox()

    def _call_scoped(self, sender: Peer, target: Peer, message: Relay, call_id: str) -> Outbox:
        """A relay that names a call: between its members, or between an invitee and
        its inviter while the invitation rings."""
        room = self._calls.get(call_id)
        if room is not None and room.expire_invitations(self.host.clock()):
            self.touched(room)
        if room is not None and room.invited.get(sender.id) == target.id:
            if message.type == "reject":
                self.uninvite(room, sender.id, sender)  # an invitation declined
                return Outbox()
            if message.type == "ringing":  # the invitee's device rings
                return Outbox()
        if (
            room is not None
            and message.type == "hangup"
            and room.invited.get(target.id) == sender.id
            and target.id not in room.members
        ):
            self.uninvite(room, target.id, sender)  # withdrawn by the inviter; the invitee hears it
            return Outbox()
        if room is None or sender.id not in room.members or target.id not in room.members:
            raise ProtocolError(
                protocol.NOT_IN_CALL,
                "the sender or the target is not a member of that call",
                message.type,
                target.id,
            )
        if message.type == "hangup" and len(room.members) == 2:
            return self.depart(sender, room)  # hanging up a call of two ends it
        return Outbox()

    def _start_call(self, caller: Peer, callee: Peer) -> Outbox:
        """`callee` accepted `caller`'s offer: a call of two. A membership either still
        had is over (a lost hang-up): they are in this call now, and the server must
        track the call they are really in (issue 18, finding 23)."""
        out = Outbox()
        for peer in (caller, callee):
            old = self._calls.get(peer.call) if peer.call is not None else None
            if old is not None:
                out.extend(self.depart(peer, old))
        room = Room(id=uuid.uuid4().hex[:16])
        self._calls[room.id] = room
        self._enter(caller, room)
        self._enter(callee, room)
        log.info("event=call-start call=%s members=2", room.id)
        self.touched(room)
        out.extend(self._call_changed(room))
        return self.host.announce(self.host.announce(out, caller), callee)

    def shared(self, one: Peer, other: Peer) -> Room | None:
        """The call both are members of, if any (a bot may be in several)."""
        for peer, partner in ((one, other), (other, one)):
            room = self._calls.get(peer.call) if peer.call is not None else None
            if room is not None and partner.id in room.members:
                return room
        return None

    @staticmethod
    def _enter(peer: Peer, room: Room) -> None:
        """`peer` becomes a member of `room`. A bot serves each caller on its own and may
        be in any number of calls at once, so it is never "in a call" itself (issue 18,
        finding 29: one call with the echo made it busy for everyone)."""
        room.members[peer.id] = None
        if peer.kind != "bot":
            peer.call = room.id

    def membership(self, peer: Peer, message: Invite | Join | LeaveCall) -> Outbox:
        if isinstance(message, Invite):
            return self._invite(peer, message)
        if isinstance(message, Join):
            return self._join(peer, message)
        return self._leave_call(peer, message.call)

    def _invite(self, sender: Peer, message: Invite) -> Outbox:
        room = self._member_room(sender, message.call, "invite")
        target = self.host.peer(message.target)
        to = message.target[:40]
        if target is None or target.name is None or target is sender or not sees(sender, target):
            raise ProtocolError(protocol.UNKNOWN_PEER, f"no peer {to!r} is connected", "invite", to)
        if protocol.GROUP not in target.caps:
            raise ProtocolError(
                protocol.UNSUPPORTED, f"{target.name} uses an app that cannot join group calls", "invite", to
            )
        old = [p.name for m in room.members if (p := self.host.peer(m)) and protocol.GROUP not in p.caps]
        if old:  # the joiner's offer would ring there as a new call
            raise ProtocolError(
                protocol.UNSUPPORTED, f"{old[0]} uses an app that cannot be in a group call", "invite", to
            )
        if target.id in room.members:
            raise ProtocolError(protocol.BAD_MESSAGE, f"{target.name} is already in this call", "invite", to)
        now = self.host.clock()
        room.expire_invitations(now)
        if (
            target.id not in room.invited
            and len(room.members) + len(room.invited) >= self.host.limits.max_call_size
        ):
            self.touched(room)
            raise ProtocolError(protocol.CALL_FULL, "This call is full", "invite", to)
        room.invite(target.id, sender.id, now + self.ringing.lifetime)
        self.touched(room)
        text = protocol.invite(sender.id, target.id, room.id, room.ids)
        if target.conn is not None:
            return Outbox().send(target.id, text)
        return self.host.hold(sender.id, target, "invite", text)

    def _join(self, peer: Peer, message: Join) -> Outbox:
        room = self._calls.get(message.call)
        if room is not None and room.expire_invitations(self.host.clock()):
            self.touched(room)
        if room is None or peer.id not in room.invited:
            raise ProtocolError(
                protocol.NOT_INVITED, "nobody in that call invited you, or the invitation is over", "join"
            )
        if len(room.members) >= self.host.limits.max_call_size:
            room.uninvite(peer.id)
            self.touched(room)
            raise ProtocolError(protocol.CALL_FULL, "This call is full", "join")
        out = Outbox()
        if peer.call is not None:  # taken from another call to this one
            old = self._calls.get(peer.call)
            if old is not None:
                out.extend(self.depart(peer, old))
        room.uninvite(peer.id)
        self._enter(peer, room)
        log.info("event=call-join call=%s peer=%s members=%d", room.id, peer.id, len(room.members))
        self.touched(room)
        out.extend(self._call_changed(room))
        return self.host.announce(out, peer)

    def _leave_call(self, peer: Peer, call_id: str) -> Outbox:
        room = self._member_room(peer, call_id, "leave-call")
        out = self.depart(peer, room)
        if room.id in self._calls and protocol.GROUP in peer.caps:  # the others carry on
            out.send(peer.id, protocol.call(room.id, [], ended=True))
        return out

    def _member_room(self, peer: Peer, call_id: str, kind: str) -> Room:
        room = self._calls.get(call_id)
        if room is None or peer.id not in room.members:
            raise ProtocolError(protocol.NOT_IN_CALL, "you are not a member of that call", kind)
        return room

    def depart(self, peer: Peer, room: Room) -> Outbox:
        """`peer` leaves `room`; the others carry on, or the call ends with one left. A
        call owned by another instance hears it from there (`_ask_owner`): here it is only
        dropped from this instance's copy."""
        if (owner := self.remote_owner(room)) is not None:
            room.members.pop(peer.id, None)
            if peer.call == room.id:
                peer.call = None
            request = json.dumps({"type": ROOM_DEPART, "data": {"call": room.id}})
            assert self.host.presence is not None
            self.host.presence.request(owner, peer.id, request)
            out = Outbox()
            return (
                self.host.announce(out, peer)
                if peer.name is not None and self.host.peer(peer.id) is not None
                else out
            )
        room.members.pop(peer.id, None)
        peer.call = None
        log.info("event=call-leave call=%s peer=%s members=%d", room.id, peer.id, len(room.members))
        out = Outbox()
        if peer.name is not None and self.host.peer(peer.id) is not None:
            self.host.announce(out, peer)
        if len(room.members) >= 2:
            self.touched(room)
            return out.extend(self._call_changed(room))
        del self._calls[room.id]
        log.info("event=call-end call=%s", room.id)
        self.touched(room, ended=True)
        for member_id in [peer.id, *room.ids, *room.invited]:
            member = self.host.peer(member_id)
            if member is None:
                continue
            if member_id in room.members:
                member.call = None
                self.host.announce(out, member)
            if protocol.GROUP not in member.caps:
                continue
            ended = protocol.call(room.id, [], ended=True)
            if member.conn is None and member.home is None:
                self.host.keep(member, ended)  # away: told on its resume (a resume sends only live calls)
            else:
                out.send(member_id, ended)
        return out

    def _call_changed(self, room: Room) -> Outbox:
        """Every member that speaks group calls gets the full, current member list."""
        text = protocol.call(room.id, room.ids)
        out = Outbox()
        for member_id in room.members:
            member = self.host.peer(member_id)
            if member is not None and protocol.GROUP in member.caps:
                out.send(member_id, text)
        return out

    def mirrored(
        self, call_id: str, members: list[str], invited: dict[str, str], owner: str | None = None
    ) -> Outbox:
        """Its owner changed a call (or ended it: fewer than two members). Its members
        were told there; here only the "in a call" marks are announced, and a bot of this
        instance in the call hears the change (bots are not shared, so the other instance
        could not tell it)."""
        room = self._calls.get(call_id)
        before = set(room.members) if room is not None else set()
        if len(members) < 2:
            self._calls.pop(call_id, None)
            members = []
        else:
            if room is None:
                room = self._calls[call_id] = Room(id=call_id)
            room.owner = None if owner is None or owner == self.host.instance else owner
            room.members = dict.fromkeys(members)
            until = self.host.clock() + self.ringing.lifetime  # an invitation new here rings from now
            room.invited = dict(invited)
            room.invited_until = {i: room.invited_until.get(i, until) for i in invited}
        out = Outbox()
        now_in = set(members)
        for peer_id in before | now_in:
            peer = self.host.peer(peer_id)
            if peer is None:
                continue
            call = call_id if peer_id in now_in else (None if peer.call == call_id else peer.call)
            if peer.kind == "bot":
                call = None  # a bot may be in several calls, and is never "in a call" (_enter)
            if peer.call != call:
                peer.call = call
                self.host.announce(out, peer)
            if peer.kind == "bot" and peer.home is None and protocol.GROUP in peer.caps:
                out.send(peer_id, protocol.call(call_id, members, ended=not members))
        return out

    def ring_from_elsewhere(self, callee: Peer, text: str) -> None:
        """A caller on another instance offered `callee` a call: its accept is handled
        here, so the offer rings here too (`_scope`)."""
        try:
            data = json.loads(text)["data"]
            caller, call, link = data["source"], data.get("call"), data.get("link")
        except (ValueError, KeyError, TypeError):
            return
        other = self.host.peer(caller) if isinstance(caller, str) else None
        if other is not None and call is None and link is None and self.shared(callee, other) is None:
            self.ringing.offered(other.id, callee.id, self.host.clock())

    def restore(self, calls: Any) -> None:
        """Calls whose members came back: a restart keeps who is in which call."""
        if not isinstance(calls, list):
            return
        for item in calls:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("id"), str)
                or not isinstance(item.get("members"), list)
            ):
                continue
            call_id = item["id"][: protocol.MAX_CALL_ID_LENGTH]
            members = [
                peer
                for m in item["members"]
                if isinstance(m, str) and (peer := self.host.peer(m)) is not None and peer.call is None
            ]
            if len(members) < 2 or call_id in self._calls or len(members) > self.host.limits.max_call_size:
                continue
            room = self._calls[call_id] = Room(id=call_id, members={p.id: None for p in members})
            for peer in members:
                peer.call = room.id

    def touched(self, room: Room, ended: bool = False) -> None:
        # Only the owner publishes a call: two instances writing it was last-writer-wins
        # (issue 18, finding 26).
        if self.host.presence is not None and self.remote_owner(room) is None:
            self.host.presence.room_changed(room, ended)

    def remote_owner(self, room: Room) -> str | None:
        """The other instance that decides this call's membership, or None (this one)."""
        if self.host.presence is None or room.owner is None or room.owner == self.host.instance:
            return None
        return room.owner

    def forwarded_to_owner(self, peer: Peer, message: Invite | Join | LeaveCall, text: str) -> bool:
        """Whether a call owned elsewhere decides this request: sent there if so."""
        room = self._calls.get(message.call)
        return not self._bot_here(message) and self._ask_owner(room, peer, text)

    def _bot_here(self, message: Invite | Join | LeaveCall) -> bool:
        """An invite of this instance's bot: bots are not shared, so only this instance
        can ask it (it stays out of a call with members elsewhere, and says so)."""
        target = self.host.peer(message.target) if isinstance(message, Invite) else None
        return target is not None and target.kind == "bot" and target.home is None

    def _ask_owner(self, room: Room | None, peer: Peer, text: str) -> bool:
        """An invite, join or leave of a call owned elsewhere: sent there, to be decided
        with what it knows (its members, invitations and limits)."""
        owner = self.remote_owner(room) if room is not None else None
        if owner is None or peer.home is not None:
            return False
        assert self.host.presence is not None
        self.host.presence.request(owner, peer.id, text)
        return True

    def uninvite(self, room: Room, invitee: str, by: Peer) -> None:
        """An invitation ends (declined, withdrawn, or its invitee went elsewhere); the
        owner of a call owned elsewhere is told, on behalf of `by`."""
        if not room.uninvite(invitee):
            return
        if (owner := self.remote_owner(room)) is not None:
            assert self.host.presence is not None
            text = json.dumps({"type": ROOM_UNINVITE, "data": {"call": room.id, "invitee": invitee}})
            self.host.presence.request(owner, by.id, text)
        else:
            self.touched(room)

    def on_behalf(self, peer_id: str, text: str) -> Outbox:
        """Another instance asks this one, the owner of a call, to handle `text` as if
        `peer_id` (a peer mirrored here) had sent it: an invite, join or leave-call, or a
        departure or ended invitation seen there. Answers reach the peer through the bus."""
        peer = self.host.peer(peer_id)
        if peer is None or peer.name is None:
            return Outbox()  # gone meanwhile: its `gone` event did what was needed
        try:
            request = json.loads(text)
            kind, data = request["type"], request["data"]
            call_id = data["call"]
        except (ValueError, KeyError, TypeError):
            return Outbox()
        room = self._calls.get(call_id) if isinstance(call_id, str) else None
        if kind == ROOM_DEPART:
            if room is not None and self.remote_owner(room) is None and peer.id in room.members:
                return self.depart(peer, room)
            return Outbox()
        if kind == ROOM_UNINVITE:
            invitee = data.get("invitee")
            if room is not None and self.remote_owner(room) is None and isinstance(invitee, str):
                self.uninvite(room, invitee, peer)
            return Outbox()
        try:
            message = protocol.parse(text)
            if isinstance(message, Invite | Join | LeaveCall):
                return self.membership(peer, message)
        except ProtocolError as exc:
            self.host.errors[exc.code] += 1
            return Outbox().send(peer.id, protocol.error(exc.code, exc.message, exc.ref, exc.target))
        return Outbox()

    # --- what the hub's own events mean for calls ----------------------------------------

    def sweep(self, now: float) -> None:
        """Offers and invitations that no longer ring are over."""
        self.ringing.sweep(now)
        for room in self._calls.values():
            if room.expire_invitations(now):
                self.touched(room)

    def forget(self, peer: Peer) -> Outbox:
        """`peer` is gone for good: what rang for it stops, its invitations end, and it
        leaves its call (a bot: every call it serves)."""
        out = Outbox()
        self.ringing.forget(peer.id)
        for invited_to in [r for r in self._calls.values() if peer.id in r.invited]:
            invited_to.uninvite(peer.id)  # the owner of a call owned elsewhere hears `gone`
            self.touched(invited_to)
        if peer.kind == "bot":  # a bot may be in several calls (_enter)
            rooms = [r for r in self._calls.values() if peer.id in r.members]
        else:
            rooms = [room] if (room := self.get(peer.call)) is not None else []
        for room in rooms:
            out.extend(self.depart(peer, room))
        return out

    def leave_everything(self, peer: Peer) -> Outbox:
        """`peer` moves to another space: its invitations end and it leaves its call."""
        out = Outbox()
        for room in [r for r in self._calls.values() if peer.id in r.invited]:
            self.uninvite(room, peer.id, peer)
        if (call := self.get(peer.call)) is not None:
            out.extend(self.depart(peer, call))
        return out

    def drop_mirror(self, peer: Peer) -> None:
        """A peer another instance held is gone: out of this instance's copies of the
        calls that instance decides (its room events told the members)."""
        for room in self._calls.values():
            if self.remote_owner(room) is None:
                continue  # decided here: the hub's removal departs it properly, and publishes
            room.uninvite(peer.id)
            room.members.pop(peer.id, None)
            if peer.call == room.id:
                peer.call = None

    def orphaned(self, home: str, others: Iterable[str]) -> None:
        """Instance `home` is gone: the calls it owned go to the first of the instances
        left (`others` and this one, by id), which every instance picks alike."""
        left = sorted({*others, *([self.host.instance] if self.host.instance else [])} - {home})
        for room in self._calls.values():
            if room.owner == home:
                room.owner = left[0] if left else None
                if self.remote_owner(room) is None:
                    room.owner = None
                    self.touched(room)

    def export(self, saved: set[str]) -> list[dict[str, Any]]:
        """Calls with at least two of the `saved` peers, for a restart (`state.py`)."""
        return [
            {"id": room.id, "members": [m for m in room.members if m in saved]}
            for room in self._calls.values()
            if sum(m in saved for m in room.members) >= 2
        ]
