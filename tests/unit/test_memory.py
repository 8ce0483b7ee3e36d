"""When the server gives memory back (server/memory.py, issue 18 finding 30)."""

from __future__ import annotations

from server.memory import MemoryReturn


def test_memory_goes_back_after_a_large_drop_at_most_every_interval() -> None:
    released: list[int] = []
    memory = MemoryReturn(min_drop=16, fraction=0.1, interval=10.0, release=lambda: released.append(1))
    assert not memory.observe(250, 0.0)  # growing: nothing to give back
    assert not memory.observe(240, 1.0)  # 10 fewer: under 16
    assert memory.observe(0, 2.0)  # everyone left
    assert len(released) == 1
    assert not memory.observe(250, 3.0)
    assert not memory.observe(0, 6.0)  # only 4 s later
    assert memory.observe(0, 12.1)  # 10 s after the last release, the drop from 250 still counts
    assert len(released) == 2
    # With 10,000 sockets a drop of 16 is churn, not an exodus: 10% of the peak is needed.
    big = MemoryReturn(release=lambda: released.append(2))
    assert not big.observe(10_000, 0.0)
    assert not big.observe(9_500, 20.0)
    assert big.observe(8_900, 21.0)


def test_the_real_release_runs_here() -> None:
    """glibc's malloc_trim where there is one; a no-op elsewhere: never an error."""
    memory = MemoryReturn(min_drop=1, interval=0.0)
    memory.observe(2, 0.0)
    assert memory.observe(0, 1.0) and memory.releases == 1
