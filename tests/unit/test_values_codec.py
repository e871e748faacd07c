"""The typed-JSON codec through orjson: where orjson differs from the json module (NaN,
non-string keys, ints beyond 64 bits, "$type" keys, subclasses, depth), what is
written is exactly what the tagging of values.encode says, and it reads back equal."""

from __future__ import annotations

import enum
import json
import math
import uuid
from collections import OrderedDict, namedtuple
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from markupsafe import Markup

from procctl.agent import values


class Text(str):
    pass


class Number(int):
    pass


class Ratio(float):
    pass


class Table(dict[Any, Any]):
    pass


Pair = namedtuple("Pair", "a b")


def _deep(levels: int) -> list[Any]:
    top: list[Any] = []
    inner = top
    for _ in range(levels):
        inner.append([])
        inner = inner[0]
    inner.append(math.nan)
    return top


# Each case: a value where orjson alone would write something else than the format.
CASES: dict[str, Any] = {
    "nan beside a None": [None, math.nan],
    "inf in a dict with a null": {"a": None, "b": [math.inf, -math.inf]},
    "nan without a null": {"x": math.nan},
    "a dict with a $type key": {"$type": "datetime", "value": "2026-01-01"},
    "a nested $type key beside a real tag": [date(2026, 1, 1), {"k": {"$type": 1}}],
    "a $type key in a dict subclass": Table({"$type": "x"}),
    "int keys": {1: "one", 2: None},
    "tuple keys": {(1, (2, 3)): "t"},
    "a big int": 2**80,
    "a big negative int in a list": [-(2**70), None],
    "the edge of 64 bits": [2**64 - 1, 2**64, -(2**63), -(2**63) - 1],
    "deeper than orjson's 255 levels": _deep(300),
    "a str subclass": [Text("t"), Markup("<b>")],
    "an int subclass": Number(7),
    "a nan float subclass": Ratio("nan"),
    "a namedtuple": Pair(1, date(2026, 2, 3)),
    "an OrderedDict": OrderedDict(b=1, a=Decimal("1.0")),
    "typed values": {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "d": Decimal("1.50"),
                     "raw": b"\x00\xff", "buf": bytearray(b"ab"), "day": date(2026, 3, 4)},
    "text that looks like a tag": ['x"$type":y', {'k"$type': 1}, "\\u0024type", "null"],
    "bytes that look like a pickled NaN": [None, b"G\x7f\xf0\x00", 1.5],
    "the largest finite floats beside a null": [None, 1.7976931348623157e308,
                                                -1.7976931348623157e308, 5e-324, -0.0],
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_output_is_the_tagged_form(name: str) -> None:
    value = CASES[name]
    written = values.dump_bytes(value)
    assert json.loads(written) == json.loads(json.dumps(values.encode(value)))


@pytest.mark.parametrize("name", list(CASES))
def test_it_reads_back_as_the_exact_path_does(name: str) -> None:
    value = CASES[name]
    back = values.loads(values.dumps(value))
    assert repr(back) == repr(values.decode(json.loads(json.dumps(values.encode(value)))))


def test_nan_next_to_none_stays_nan() -> None:
    back = values.loads(values.dumps({"a": None, "b": math.nan, "c": [math.inf]}))
    assert back["a"] is None and math.isnan(back["b"]) and back["c"] == [math.inf]


def test_a_nan_that_pickle_cannot_see_is_still_found() -> None:
    """The NaN check pickles the value; a local class cannot be pickled, and the json
    module's encoder decides instead."""
    class Local(enum.Enum):
        ONE = 1

    back = values.loads(values.dumps([Local.ONE, None, math.nan]))
    assert back[:2] == [1, None] and math.isnan(back[2])


def test_big_ints_read_back_exactly() -> None:
    """orjson reads an integer beyond 64 bits as a float: such text goes to the json
    module."""
    for number in (2**64, 2**80, -(2**63) - 1, 10**30):
        assert values.loads(values.dumps({"n": number})) == {"n": number}
        assert type(values.loads(str(number))) is int


def test_an_escaped_tag_is_decoded_as_the_json_module_reads_it() -> None:
    text = '{"\\u0024type": "date", "value": "2026-05-06"}'
    assert values.loads(text) == date(2026, 5, 6)


def test_text_only_the_json_module_reads_is_still_read() -> None:
    assert math.isnan(values.loads('{"x": NaN}')["x"])


def test_a_uuid_and_an_enum_are_stored_as_orjson_writes_them() -> None:
    class Colour(enum.Enum):
        RED = "red"

    key = uuid.UUID(int=5)
    assert values.loads(values.dumps([key, Colour.RED])) == [str(key), "red"]
    # the same on the exact path (a non-string key sends the value there)
    assert values.loads(values.dumps([key, Colour.RED, {1: 2}])) == [str(key), "red", {1: 2}]


@pytest.mark.parametrize("value", [{1, 2}, object(), {"a": [frozenset()]},
                                   {1: {2, 3}}, datetime.now().time()])
def test_what_cannot_be_stored_is_refused_naming_its_type(value: Any) -> None:
    with pytest.raises(TypeError, match="cannot be stored"):
        values.dumps(value)


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(TypeError, match="not valid Unicode"):
        values.dumps({"s": "\ud800"})


def test_output_is_compact_utf8() -> None:
    assert values.dumps({"é": [1, "ü"]}) == '{"é":[1,"ü"]}'
