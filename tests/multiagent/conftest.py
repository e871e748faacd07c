"""Fixtures of the multi-agent tests: a fleet of real agents on one throwaway
PostgreSQL database, killed at teardown; their logs printed when the test failed."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from fleet import Fleet


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                         pytest.TestReport]:
    """Keep each phase's report on the item, so a fixture's teardown knows the outcome."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    """A fleet (no agents yet: `fleet.start(2)`) sharing a fresh database; 2 s leases."""
    with Fleet(tmp_path / "fleet", pg_url) as running:
        try:
            yield running
        finally:
            running.close()
            failed = any(getattr(getattr(request.node, f"report_{when}", None), "failed", False)
                         for when in ("setup", "call"))
            if failed:
                print(running.logs())
