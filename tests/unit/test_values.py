"""Typed JSON: every supported type survives the store exactly."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from procctl.agent import values

SAMPLES: list[Any] = [
    None, True, False, 0, -7, 2**70, 1.5, "text", "", "{{ 7*7 }}",
    [1, "a", None], {"a": {"b": [1, 2]}},
    datetime(2026, 11, 25, 10, 30, 1, 123456, tzinfo=UTC),
    datetime(2026, 11, 25, 10, 30, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 1, 1, 0, 0),
    date(2026, 2, 28), Decimal("10.005"), Decimal("-0.00"), b"\x00\xffbytes",
    {"$type": "not a tag"}, {1: "int key"}, float("inf"),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_round_trip_keeps_value_and_type(value: Any) -> None:
    back = values.loads(values.dumps(value))
    assert back == value
    assert type(back) is type(value)


def test_nested_types_round_trip() -> None:
    value = {"when": [date(2026, 1, 2), {"amount": Decimal("1.10"), "raw": b"x"}]}
    back = values.loads(values.dumps(value))
    assert back == value
    assert isinstance(back["when"][1]["amount"], Decimal)


def test_output_is_plain_json() -> None:
    text = values.dumps({"d": Decimal("1.5"), "n": 1})
    assert json.loads(text) == {"d": {"$type": "decimal", "value": "1.5"}, "n": 1}


def test_unsupported_type_is_refused() -> None:
    with pytest.raises(TypeError, match="set"):
        values.dumps({1, 2})


def test_to_plain_for_people() -> None:
    plain = values.to_plain({"at": date(2026, 1, 2), "n": Decimal("2.50"), "b": b"hi"})
    assert plain == {"at": "2026-01-02", "n": "2.50", "b": "aGk="}
