"""Typed JSON: process values that keep their Python type through the store.

Plain JSON types are written as they are; datetime, date, Decimal, bytes, float
inf/nan and dicts with non-string keys are written as {"$type": ..., "value": ...}
objects. A dict that itself has a "$type" key is escaped the same way, so decoding is
exact. Tuples are written as lists and come back as lists, except as dict keys, where
they come back as tuples (a list cannot be a key). The format is documented in
docs/snapshot-format.md.
"""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def encode(value: Any) -> Any:
    """A JSON-able structure that `decode` turns back into `value` exactly."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"$type": "float", "value": repr(value)}
        return value
    if isinstance(value, datetime):
        return {"$type": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"$type": "date", "value": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$type": "decimal", "value": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"$type": "bytes", "value": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value) and "$type" not in value:
            return {key: encode(item) for key, item in value.items()}
        return {"$type": "dict", "value": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"a value of type {type(value).__name__} cannot be stored")


def decode(data: Any) -> Any:
    if isinstance(data, list):
        return [decode(item) for item in data]
    if isinstance(data, dict):
        kind = data.get("$type")
        if kind is None:
            return {key: decode(item) for key, item in data.items()}
        raw = data["value"]
        if kind == "datetime":
            return datetime.fromisoformat(raw)
        if kind == "date":
            return date.fromisoformat(raw)
        if kind == "decimal":
            return Decimal(raw)
        if kind == "bytes":
            return base64.b64decode(raw)
        if kind == "float":
            return float(raw)
        if kind == "dict":
            return {_key(decode(k)): decode(v) for k, v in raw}
        raise ValueError(f"unknown $type {kind!r} in stored value")
    return data


def _key(value: Any) -> Any:
    """A decoded dict key: a list can only have been a tuple (lists are not hashable)."""
    return tuple(_key(item) for item in value) if isinstance(value, list) else value


def dumps(value: Any) -> str:
    return json.dumps(encode(value), ensure_ascii=False, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else decode(json.loads(text))


def to_plain(value: Any) -> Any:
    """A plain JSON form for people and scripts (--json output): ISO dates, str decimals."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_plain(item) for key, item in value.items()}
    return repr(value)
