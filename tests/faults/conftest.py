"""Fixtures of the fault suite: agents of the test's home that the test can kill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faults.kit import Agents
from helpers import Procctl


@pytest.fixture
def agents(procctl: Procctl, tmp_path: Path) -> Iterator[Agents]:
    runner = Agents(procctl, tmp_path / "agent-output")
    yield runner
    runner.close()
