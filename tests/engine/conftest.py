"""The `engine` fixture: the in-process harness (tests/engine/harness.py) in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine.harness import Engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    harness = Engine(tmp_path)
    yield harness
    harness.close()
