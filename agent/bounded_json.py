"""JSON from outside, decoded within limits that the standard decoder lacks.

`json.loads` recurses once per nesting level (a file of 100,000 `[` raises
RecursionError), refuses integers of more than 4,300 digits with a ValueError, turns
`1e999` into infinity and accepts `NaN`, `Infinity` and lone UTF-16 surrogates
(`"\\ud800"`), which are not text and cannot be stored. Here each of these is a
`JSONLimit` whose message names what is wrong; the depth is measured before decoding.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
MAX_NUMBER_CHARS = 100

#: a JSON string, escapes included (the "unrolled loop" form: linear, no backtracking)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JSONLimit(ValueError):
    """The text is JSON, or nearly, but beyond what is accepted; the message says why."""


def nesting_depth(text: str, stop_after: int) -> int:
    """The deepest nesting of arrays and objects, counting no further than `stop_after`
    (brackets inside strings do not count)."""
    skeleton = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in skeleton:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    break
        else:
            depth -= 1
    return deepest


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONLimit(f"a number of {len(text)} characters; the limit is "
                        f"{MAX_NUMBER_CHARS}")
    return int(text)


def _real(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONLimit(f"a number of {len(text)} characters; the limit is "
                        f"{MAX_NUMBER_CHARS}")
    value = float(text)
    if math.isinf(value):
        raise JSONLimit(f"the number {text} is out of range (beyond a 64-bit float)")
    return value


def _constant(name: str) -> Any:
    raise JSONLimit(f"{name} is not a JSON value")


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode `text`; JSONLimit for the limits above, json.JSONDecodeError for bad JSON."""
    depth = nesting_depth(text, max_depth)
    if depth > max_depth:
        raise JSONLimit(f"nested deeper than {max_depth} levels (arrays and objects)")
    try:
        document = json.loads(text, parse_int=_integer, parse_float=_real,
                              parse_constant=_constant)
    except RecursionError:  # not reached after the depth check; kept as a guard
        raise JSONLimit(f"nested deeper than {max_depth} levels (arrays and objects)") \
            from None
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end]
        raise JSONLimit(f"a lone surrogate ({bad.encode('unicode_escape').decode()}) is "
                        "not text: \\ud800-\\udfff escapes must come in valid pairs") from None
    return document
