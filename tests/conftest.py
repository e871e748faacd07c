"""Shared fixtures: a fresh agent home per test and a way to run the real `procctl`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import Procctl
from pg_server import PgServer, PgUnavailable, database_name, start_server, unavailable


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def procctl(home: Path) -> Iterator[Procctl]:
    runner = Procctl(home)
    yield runner
    runner.stop_agent()


@pytest.fixture
def write_definition(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write TOML text to a file in the test's directory and return its path."""

    def write(text: str, name: str = "process.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def shared_procctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procctl]:
    """One home (and agent) for the session: for tests that need *an* agent, not a new one.

    Each such test uses its own definition file (and process name) and reads only its
    own instances, so sharing the agent keeps the suite fast without coupling the tests.
    """
    runner = Procctl(tmp_path_factory.mktemp("shared") / "home")
    yield runner
    runner.stop_agent()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL cluster for this pytest process (each xdist worker has its
    own), started on first use. Skipped when none can be had; fails instead under CI=true."""
    try:
        server = start_server()
    except PgUnavailable as exc:
        unavailable(str(exc))
    yield server
    server.close()


@pytest.fixture
def pg_url(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A libpq URL to a fresh, empty database for this test, dropped after it."""
    pg_server.ensure_running()  # an earlier test may have stopped or killed the server
    name = database_name(request.node.nodeid)
    yield pg_server.create_database(name)
    pg_server.ensure_running()
    pg_server.drop_database(name)
