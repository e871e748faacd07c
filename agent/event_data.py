"""History event data as JSON text, fast for the flat dictionaries most events carry.

step_started's `{"kind": "task"}` and step_finished's `{"duration": 0.0012}` are
written several times per step: `flat_json` writes a dictionary of text keys and
scalar values with the C string encoder `json.dumps` itself uses, giving exactly
`json.dumps(data)` (the same separators, escapes, float and NaN forms) in half its
time; anything else is None, for `json.dumps` after `values.to_plain`.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any

_FLOAT_SPECIALS = {float("inf"): "Infinity", float("-inf"): "-Infinity"}


def _scalar(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value:
            return "NaN"
        return _FLOAT_SPECIALS.get(value) or float.__repr__(value)
    if value is None:
        return "null"
    return None


def flat_json(data: dict[str, Any]) -> str | None:
    """`json.dumps(data)` when every key is text and every value a str, int, float, bool
    or None (exact types); else None."""
    parts = []
    for key, value in data.items():
        if type(key) is not str:
            return None
        text = _scalar(value)
        if text is None:
            return None
        parts.append(f"{encode_basestring_ascii(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


def event_json(data: dict[str, Any], to_plain: Any) -> tuple[Any, str]:
    """(the plain data, its JSON text): `to_plain` is only run for data that is not flat."""
    text = flat_json(data)
    if text is not None:
        return data, text
    plain = to_plain(data)
    return plain, json.dumps(plain)
