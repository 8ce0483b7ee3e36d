"""What is ringing right now: 1:1 offers waiting for their answer (docs/protocol.md §7).

A call between two people exists only once the callee accepted the caller's offer, so
the hub records each plain `offer` (no call id, not a data link) here, and turns an
`accept` into a call only when it answers a live offer from its target. Without this an
`accept` sent to anyone idle made a call out of nothing, and the victim's page then
answered the attacker's media at once (issue 18, finding 22).

An offer lives as long as it rings (`lifetime`: the ring time plus the callee's slack);
the caller's `hangup` withdraws it, the callee's `reject` or `accept` consumes it. Each
caller keeps at most `per_caller` offers (the oldest go first), so memory is bounded by
the number of peers whatever a flood of offers does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PER_CALLER = 16  # people one peer can be ringing at once; a person rings one at a time


@dataclass(slots=True)
class Ringing:
    lifetime: float
    per_caller: int = PER_CALLER
    _offers: dict[str, dict[str, float]] = field(default_factory=dict)  # caller -> callee -> deadline

    def offered(self, caller: str, callee: str, now: float) -> None:
        """`caller` sent `callee` a call offer: it rings until the deadline."""
        ringing = self._offers.setdefault(caller, {})
        ringing.pop(callee, None)  # a repeated offer rings anew, and is the newest
        ringing[callee] = now + self.lifetime
        while len(ringing) > self.per_caller:
            del ringing[next(iter(ringing))]

    def answered(self, caller: str, callee: str, now: float) -> bool:
        """`callee` answers `caller`: whether a live offer was waiting (it is used up)."""
        ringing = self._offers.get(caller)
        deadline = ringing.pop(callee, None) if ringing is not None else None
        if ringing is not None and not ringing:
            del self._offers[caller]
        return deadline is not None and deadline > now

    def withdrawn(self, caller: str, callee: str) -> None:
        """The caller hung up, or the callee declined: nothing rings any more."""
        self.answered(caller, callee, 0.0)

    def forget(self, peer_id: str) -> None:
        """`peer_id` left: its own offers go; offers to it die with their deadline, or
        on `sweep`."""
        self._offers.pop(peer_id, None)

    def sweep(self, now: float) -> None:
        """Drop every offer past its deadline."""
        for caller in list(self._offers):
            ringing = self._offers[caller]
            for callee in [c for c, deadline in ringing.items() if deadline <= now]:
                del ringing[callee]
            if not ringing:
                del self._offers[caller]

    def __len__(self) -> int:
        return sum(len(r) for r in self._offers.values())
