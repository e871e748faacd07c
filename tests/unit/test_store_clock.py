"""The store's clock: an agent on a shared store takes its timestamps from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from procctl.store import clock


@pytest.fixture
def restored_offset() -> Iterator[None]:
    yield
    clock.set_offset(0.0)


def test_an_offset_moves_every_timestamp_the_agent_takes(restored_offset: None) -> None:
    host = datetime.fromisoformat(clock.utc_now())
    clock.set_offset(3600.0)
    shifted_now = datetime.fromisoformat(clock.utc_now())
    shifted_after = datetime.fromisoformat(clock.utc_after(60))
    assert timedelta(minutes=59) < shifted_now - host < timedelta(minutes=61)
    assert timedelta(seconds=59) < shifted_after - shifted_now < timedelta(seconds=61)
    clock.set_offset(0.0)
    assert datetime.fromisoformat(clock.utc_now()) - host < timedelta(minutes=1)
