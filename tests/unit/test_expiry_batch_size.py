"""The agent sizes its expiry batches by time: each transaction holds the store thread
about BATCH_SECONDS, whatever one expiry costs on this disk and store."""

from __future__ import annotations

import pytest

from procctl.agent.expiry import PURGE_BATCH
from procctl.agent.scheduler import BATCH_SECONDS, MIN_BATCH, BatchSize


@pytest.mark.parametrize("per_expiry", [0.0001, 0.0004, 0.002])
def test_the_batch_converges_to_the_time_it_may_take(per_expiry: float) -> None:
    batch = BatchSize()
    for _ in range(20):
        batch.took(batch.size, batch.size * per_expiry)
    expected = max(MIN_BATCH, min(PURGE_BATCH, int(BATCH_SECONDS / per_expiry)))
    assert abs(batch.size - expected) <= max(2, expected // 20), (batch.size, expected)


def test_a_slow_disk_shrinks_it_to_the_least_and_nothing_measured_keeps_it() -> None:
    batch = BatchSize(size=200)
    sizes = []
    for _ in range(6):  # a second per expiry: a disk in trouble; it halves each time
        batch.took(batch.size, batch.size * 1.0)
        sizes.append(batch.size)
    assert sizes == [100, 50, 25, 12, MIN_BATCH, MIN_BATCH]
    batch.took(0, 0.5)
    batch.took(10, 0.0)
    assert batch.size == MIN_BATCH
