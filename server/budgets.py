"""Limits per client address (issue 18, findings 28 and 33): the buckets every socket from
one address shares, so opening more sockets (or reconnecting after a 1008) does not
multiply them, and the sockets each address holds, so the server can make room for a
newcomer at the expense of the address holding the most. Kept by the hub (`hub.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .peers import IN_PROCESS, HubLimits
from .ratelimit import TokenBucket


@dataclass(slots=True, eq=False)
class AddressBudget:
    """Limits shared by every socket from one client address, so opening more sockets
    (or reconnecting after a 1008) does not multiply them."""

    messages: TokenBucket | None
    renames: TokenBucket | None
    joins: TokenBucket | None  # a join reaches everyone too (and so does its leave)
    new_spaces: TokenBucket | None = None  # entering a space nobody is in: a guess, or a new one
    sockets: int = 0


class AddressBudgets:
    """Every address's budget, made on first use and dropped once it holds no socket and
    its buckets are full again (the same as a new one)."""

    def __init__(self, limits: HubLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self._by_address: dict[str, AddressBudget] = {}

    def of(self, address: str) -> AddressBudget:
        budget = self._by_address.get(address)
        if budget is None:
            limits, now = self.limits, self.clock()
            shared = address != IN_PROCESS
            budget = self._by_address[address] = AddressBudget(
                messages=TokenBucket(limits.address_rate_limit, int(limits.address_rate_limit * 2), now)
                if shared and limits.address_rate_limit > 0
                else None,
                renames=TokenBucket(limits.rename_rate, limits.rename_burst, now)
                if shared and limits.rename_rate > 0
                else None,
                joins=TokenBucket(limits.join_rate, limits.join_burst, now)
                if shared and limits.join_rate > 0
                else None,
                new_spaces=TokenBucket(limits.new_space_rate / 60, max(1, int(limits.new_space_rate)), now)
                if shared and limits.new_space_rate > 0
                else None,
            )
        return budget

    def release(self, address: str) -> None:
        """A socket from `address` closed."""
        budget = self._by_address.get(address)
        if budget is not None:
            budget.sockets -= 1

    def sockets(self, address: str) -> int:
        budget = self._by_address.get(address)
        return budget.sockets if budget is not None else 0

    def heaviest(self, besides: str) -> str | None:
        """The client address holding the most sockets, other than `besides` (and the bots')."""
        return max(
            (a for a in self._by_address if a not in (IN_PROCESS, besides)),
            key=lambda a: self._by_address[a].sockets,
            default=None,
        )

    def sweep(self, now: float) -> None:
        for address in [a for a, b in self._by_address.items() if b.sockets == 0 and _rested(b, now)]:
            del self._by_address[address]  # a full bucket is the same as a new one

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_address)


def _rested(budget: AddressBudget, now: float) -> bool:
    buckets = (budget.messages, budget.renames, budget.joins, budget.new_spaces)
    return all(b is None or b.full(now) for b in buckets)
