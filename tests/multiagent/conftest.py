"""Fixtures of the multi-agent tests: a fleet of real agents on one throwaway
PostgreSQL database, killed at teardown; their logs printed when the test failed."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from fleet import Fleet
from pg_server import PgServer, database_name


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                         pytest.TestReport]:
    """Keep each phase's report on the item, so a fixture's teardown knows the outcome."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"report_{when}", None), "failed", False)
               for when in ("setup", "call"))


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    """A fleet (no agents yet: `fleet.start(2)`) sharing a fresh database; 2 s leases."""
    with Fleet(tmp_path / "fleet", pg_url) as running:
        try:
            yield running
        finally:
            running.close()
            if _failed(request):
                print(running.logs())


@pytest.fixture(scope="module")
def _module_pair(pg_server: PgServer, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    name = database_name(f"{request.node.nodeid}::pair")
    pg_server.ensure_running()
    url = pg_server.create_database(name)
    try:
        with Fleet(tmp_path_factory.mktemp("pair") / "fleet", url) as running:
            running.start(2)
            yield running
    finally:
        pg_server.ensure_running()
        pg_server.drop_database(name)


@pytest.fixture
def pair(_module_pair: Fleet, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    """Two running agents, a and b, shared by the tests of one module (starting a fleet
    costs seconds): for tests that neither stop nor kill an agent, and that keep to their
    own correlation IDs and instances. Logs printed when the test failed."""
    for agent in _module_pair:
        assert agent.alive, f"agent {agent.name} of the shared pair died:\n{agent.log()}"
    yield _module_pair
    if _failed(request):
        print(_module_pair.logs())
