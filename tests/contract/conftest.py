"""Every test of the contract suite runs once per backend (the `backend` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contract.backends import BACKENDS, Opener

from procctl.store import StoreContract


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    opener: Opener = BACKENDS[request.param](tmp_path, request)
    return opener


@pytest.fixture
def store(backend: Opener) -> Iterator[StoreContract]:
    store = backend()
    yield store
    store.close()
