"""Token bucket (per socket, per address) with an injected clock, so tests control time."""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    ALLOW = "allow"
    DROP = "drop"  # over the limit: drop silently
    DROP_AND_WARN = "warn"  # over the limit: drop and send one `rate-limited` (at most 1/s)
    CLOSE = "close"  # far over the limit for a sustained time: close with 1008


class TokenBucket:
    """`rate` tokens per second up to `burst`; one token per message.

    A socket "stays far over the limit" when, for `strikes_to_close` consecutive
    one-second windows, it sends more than twice the rate (i.e. at least `rate` drops
    in the window). That is what closes the socket; a burst, or a client that merely
    hovers at the limit, is only throttled.
    """

    __slots__ = (
        "_dropped_in_window",
        "_last",
        "_last_warning",
        "_strikes",
        "_window_start",
        "burst",
        "rate",
        "strikes_to_close",
        "tokens",
    )

    def __init__(self, rate: float, burst: int, now: float, strikes_to_close: int = 5) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.strikes_to_close = strikes_to_close
        self._last = now
        self._last_warning = float("-inf")
        self._window_start = now
        self._dropped_in_window = 0
        self._strikes = 0

    def take(self, now: float) -> Verdict:
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if now - self._window_start >= 1.0:
            self._close_window(now)
        if self.tokens >= 1.0 - 1e-9:  # float steps at exactly the rate must not drop
            self.tokens = max(0.0, self.tokens - 1.0)
            return Verdict.ALLOW
        self._dropped_in_window += 1
        if self._strikes + 1 >= self.strikes_to_close and self._dropped_in_window >= self.rate:
            return Verdict.CLOSE
        if now - self._last_warning >= 1.0:
            self._last_warning = now
            return Verdict.DROP_AND_WARN
        return Verdict.DROP

    def has_token(self, now: float) -> bool:
        """Whether `take` would allow now (nothing is taken)."""
        elapsed = max(0.0, now - self._last)
        return min(self.burst, self.tokens + elapsed * self.rate) >= 1.0 - 1e-9

    def full(self, now: float) -> bool:
        """Refilled to its burst by `now`: indistinguishable from a new bucket."""
        return self.tokens + max(0.0, now - self._last) * self.rate >= self.burst and self._strikes == 0

    def _close_window(self, now: float) -> None:
        windows = int((now - self._window_start) // 1.0)
        if windows == 1 and self._dropped_in_window >= self.rate:
            self._strikes += 1
        else:  # a calm window, or a gap of several seconds, forgives
            self._strikes = 0
        self._window_start += windows
        self._dropped_in_window = 0
