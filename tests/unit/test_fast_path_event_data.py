"""History event data: agent/event_data.py writes flat dictionaries exactly as
json.dumps does (the text stored in events.data_json), and leaves the rest to it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from procctl.agent import values
from procctl.agent.event_data import event_json, flat_json

FLAT: list[dict[str, Any]] = [
    {}, {"kind": "task"}, {"duration": 0.0012345}, {"duration": 0.0}, {"n": -0.0},
    {"big": 2**80, "neg": -(2**70), "zero": 0}, {"yes": True, "no": False, "none": None},
    {"nan": float("nan"), "inf": float("inf"), "minus": float("-inf")},
    {"tiny": 1.5e-7, "huge": 1e300, "third": 1 / 3},
    {"text": "é\n\t\x00\x1f\"\\ \u2028 日本 \ud83d 😀", "é ключ": "x"},
    {"message": "step 'a' failed", "kind": "expression", "step_id": None},
]
NOT_FLAT: list[dict[Any, Any]] = [
    {"list": [1, 2]}, {"nested": {"a": 1}}, {1: "int key"}, {"tuple": (1,)},
    {"bytes": b"x"}, {"set": {1}},
]


@pytest.mark.parametrize("data", FLAT)
def test_flat_data_is_written_as_json_dumps_writes_it(data: dict[str, Any]) -> None:
    assert flat_json(data) == json.dumps(data)
    plain, text = event_json(data, values.to_plain)
    assert plain is data and text == json.dumps(data)


@pytest.mark.parametrize("data", NOT_FLAT)
def test_other_data_goes_through_to_plain_and_json_dumps(data: dict[Any, Any]) -> None:
    assert flat_json(data) is None
    plain, text = event_json(data, values.to_plain)
    assert plain == values.to_plain(data) and text == json.dumps(values.to_plain(data))


def test_subclasses_are_not_taken_for_their_base() -> None:
    class Text(str):
        pass

    assert flat_json({"a": Text("x")}) is None
    assert flat_json({Text("k"): 1}) is None
