"""Typed JSON: process values that keep their Python type through the store.

Plain JSON types are written as they are; datetime, date, Decimal, bytes, float
inf/nan and dicts with non-string keys are written as {"$type": ..., "value": ...}
objects. A dict that itself has a "$type" key is escaped the same way, so decoding is
exact. Tuples are written as lists and come back as lists, except as dict keys, where
they come back as tuples (a list cannot be a key). The format is documented in
docs/snapshot-format.md.

Writing and reading go through orjson (a C encoder, ~50x the json module) with the
typed values tagged by its `default` hook, so no Python walk over the value is needed
in the common case. What orjson does differently from the format is caught and sent
down the exact path (`encode`, then orjson or the json module):

- NaN and infinities: orjson writes `null`. Output that holds `null` is checked for
  non-finite floats: in the value's pickle (a C walk, ~4x orjson's time), a float is
  "G" and 8 big-endian bytes, so a non-finite one shows as G, 0x7f or 0xff, then a
  byte from 0xf0; when that pattern shows (or pickling fails), the json module's C
  encoder with allow_nan=False decides.
- a dict with a "$type" key: counted in the output against the tags written.
- non-string dict keys, ints beyond 64 bits, lone surrogates, nesting deeper than
  orjson's 255 levels: orjson refuses them (the json module writes big ints as numbers).
- reading: orjson turns integers beyond 64 bits into floats, so text with a run of 19
  digits is read by the json module; text with a tag or an escape is decoded.

A UUID or an Enum member (which orjson writes natively, as its text or its value) is
stored as that text or value.
"""

from __future__ import annotations

import base64
import json
import pickle
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
            | orjson.OPT_PASSTHROUGH_DATACLASS)
_TAG_KEY = b'"$type":'
#: a non-finite float in a pickle: BINFLOAT ("G"), exponent bits all set
_NON_FINITE_PICKLED = re.compile(rb"G[\x7f\xff][\xf0-\xff]")
#: only checks for non-finite floats: anything orjson wrote is otherwise fine for it
_FINITE_CHECK = json.JSONEncoder(allow_nan=False, check_circular=False, ensure_ascii=False,
                                 separators=(",", ":"), default=lambda _: None)
#: an integer orjson may not read exactly (beyond 64 bits) has a run of 19 digits or
#: more: found by mapping every digit to "0" and everything else to "." (C, fast)
_DIGITS_ONLY = bytes(48 if 48 <= byte <= 57 else 46 for byte in range(256))
_LONG_RUN = b"0" * 19


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
    if isinstance(value, UUID):  # as orjson writes it
        return str(value)
    if isinstance(value, Enum):
        return encode(value.value)
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


def _tag_datetime(value: datetime) -> dict[str, str]:
    return {"$type": "datetime", "value": value.isoformat()}


def _tag_date(value: date) -> dict[str, str]:
    return {"$type": "date", "value": value.isoformat()}


def _tag_decimal(value: Decimal) -> dict[str, str]:
    return {"$type": "decimal", "value": str(value)}


def _tag_bytes(value: bytes | bytearray) -> dict[str, str]:
    return {"$type": "bytes", "value": base64.b64encode(value).decode("ascii")}


#: the tag of each typed value, by exact type (a subclass goes through `encode`)
_TAGS: dict[type, Callable[[Any], dict[str, str]]] = {
    datetime: _tag_datetime, date: _tag_date, Decimal: _tag_decimal,
    bytes: _tag_bytes, bytearray: _tag_bytes,
}


class _Tagger:
    """orjson's `default`: the tag of a typed value, counting the tags it writes."""

    __slots__ = ("tags",)

    def __init__(self) -> None:
        self.tags = 0

    def __call__(self, value: Any) -> Any:
        tag = _TAGS.get(type(value))
        if tag is not None:
            self.tags += 1
            return tag(value)
        if isinstance(value, str):  # a subclass (Markup, a StrEnum): its text
            return str.__str__(value)
        if isinstance(value, datetime | date | Decimal | bytes | bytearray):
            self.tags += 1
            return encode(value)
        if isinstance(value, float):  # a subclass: the number
            return float.__float__(value)
        if isinstance(value, int):
            return int.__int__(value)
        if isinstance(value, dict):
            return dict(value)
        if isinstance(value, list | tuple):
            return list(value)
        raise TypeError(f"a value of type {type(value).__name__} cannot be stored")


def dump_bytes(value: Any) -> bytes:
    """Typed JSON of `value` as UTF-8: compact, not ASCII-escaped, `loads` reads it back
    equal. Raises TypeError for a value that cannot be stored."""
    tagger = _Tagger()
    try:
        text = orjson.dumps(value, default=tagger, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: something only the exact path writes
        return _exact(value)
    # A dict of the value's own with a "$type" key shows as one "$type": more than the
    # tags written; each tag has one "$", so text with no other "$" (a fast look) has none.
    dollars = (b"$" in text) if tagger.tags == 0 else text.count(b"$") != tagger.tags
    if dollars and text.count(_TAG_KEY) != tagger.tags:
        return _exact(value)
    if b"null" in text and not _all_finite(value):  # orjson wrote NaN / inf as null
        return _exact(value)
    return text


def _all_finite(value: Any) -> bool:
    """Whether no float in `value` (which orjson could write) is NaN or infinite."""
    try:
        pickled = pickle.dumps(value, protocol=5)
    except Exception:  # a type pickle cannot write (a local Enum, ...): ask json
        pickled = None
    if pickled is not None and _NON_FINITE_PICKLED.search(pickled) is None:
        return True
    try:
        _FINITE_CHECK.encode(value)
    except ValueError:
        return False
    return True


def _exact(value: Any) -> bytes:
    """The tagged structure (`encode`, a Python walk), written by orjson or, for what it
    refuses (ints beyond 64 bits), by the json module."""
    tree = encode(value)
    try:
        return orjson.dumps(tree)
    except TypeError:
        pass
    try:
        return json.dumps(tree, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TypeError(f"a string that is not valid Unicode cannot be stored: {exc}") from None


def dumps(value: Any) -> str:
    return dump_bytes(value).decode("utf-8")


def parse(text: str | bytes) -> Any:
    """The JSON structure of `text` (no decoding of tags): orjson, or the json module for
    a long integer orjson would turn into a float, or for text orjson refuses."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _LONG_RUN not in raw.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def may_hold_tags(text: str | bytes) -> bool:
    """Whether parsed `text` can hold a `$type` object, so that `decode` has work to do
    (a "$type" key, or an escape that could spell one)."""
    if isinstance(text, bytes):
        return (b"$" in text and b'"$type"' in text) or (b"\\" in text and b"\\u" in text)
    return ("$" in text and '"$type"' in text) or ("\\" in text and "\\u" in text)


def loads(text: str | bytes | None) -> Any:
    if text is None:
        return None
    data = parse(text)
    return decode(data) if may_hold_tags(text) else data


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
