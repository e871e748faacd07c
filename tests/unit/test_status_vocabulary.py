"""One status vocabulary: every status the store's SQL names is a Status (instances) or
a SignalStatus (signals), and a record read back holds the enum, not loose text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from procctl.store.records import InstanceRecord, SignalRecord, SignalStatus, Status

STORE = Path(__file__).resolve().parents[2] / "store"
#: `status = 'x'`, `status != 'x'`, `status IN ('x', 'y')` in the store's SQL text
SQL_STATUS = re.compile(r"status\s*(?:=|!=|IN)\s*\(?\s*((?:'[a-z_]+'\s*,?\s*)+)")


def test_every_status_in_the_stores_sql_is_in_the_vocabulary() -> None:
    named: set[str] = set()
    for source in STORE.glob("*.py"):
        for match in SQL_STATUS.finditer(source.read_text(encoding="utf-8")):
            named.update(re.findall(r"'([a-z_]+)'", match.group(1)))
    assert named, "no status found in the store's SQL: the pattern is out of date"
    assert named <= {*Status, *SignalStatus}, named - {*Status, *SignalStatus}


def test_cancelled_is_an_instance_status_that_has_ended() -> None:
    assert Status("cancelled") is Status.CANCELLED
    assert "cancelled" not in set(SignalStatus)


def test_records_hold_the_enums() -> None:
    instance = InstanceRecord("i", "sha", "p", None, "paused", "{}", "{}", "t", "t", None,
                              None, None)
    assert instance.status is Status.PAUSED
    signal = SignalRecord("r", None, "c", None, None, "file", "pending", None, None, "t",
                          None, None)
    assert signal.status is SignalStatus.PENDING
    with pytest.raises(ValueError):
        InstanceRecord("i", "sha", "p", None, "stopped", "{}", "{}", "t", "t", None, None,
                       None)
