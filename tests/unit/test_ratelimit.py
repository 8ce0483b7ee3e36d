"""Token bucket with an injected clock."""

from __future__ import annotations

import pytest

from server.ratelimit import TokenBucket, Verdict


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=50, burst=200, now=0.0)
    verdicts = [bucket.take(0.0) for _ in range(201)]
    assert verdicts[:200] == [Verdict.ALLOW] * 200
    assert verdicts[200] is Verdict.DROP_AND_WARN
    assert bucket.take(0.01) is Verdict.DROP  # warned already this second; 0.5 token
    assert bucket.take(0.03) is Verdict.ALLOW  # 1.5 tokens accumulated


def test_steady_at_the_rate_is_never_dropped() -> None:
    bucket = TokenBucket(rate=50, burst=1, now=0.0)
    assert all(bucket.take(i / 50) is Verdict.ALLOW for i in range(1, 5000))


def test_tokens_cap_at_burst() -> None:
    bucket = TokenBucket(rate=50, burst=10, now=0.0)
    bucket.take(1000.0)
    assert bucket.tokens == pytest.approx(9.0)


def test_sustained_flood_closes_and_calm_window_forgives() -> None:
    bucket = TokenBucket(rate=10, burst=10, now=0.0, strikes_to_close=3)
    t = 0.0
    verdicts: list[Verdict] = []
    for _ in range(2):  # two seconds of 5x the rate
        for i in range(50):
            verdicts.append(bucket.take(t + i / 50))
        t += 1.0
    for i in range(5):  # one calm second forgives
        bucket.take(t + i / 5)
    t += 1.0
    for _ in range(2):
        for i in range(50):
            verdicts.append(bucket.take(t + i / 50))
        t += 1.0
    assert Verdict.CLOSE not in verdicts
    closed = False
    for i in range(50):
        closed = closed or bucket.take(t + i / 50) is Verdict.CLOSE
    assert closed
