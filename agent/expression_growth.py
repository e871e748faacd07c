"""How large a value an operation is about to build, known before it is built.

A few operations turn a small number into a large value: a width (`center(10**9)`,
`'{:>99999999}'`), a count, a repetition, a separator put between many items. Their
size is estimated from the arguments, so the sandbox can refuse them before the
memory is taken (see `agent/expression_limits.py` for what a size is).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from procctl.agent.expression_limits import SCALAR_SIZE, size_of

_BIG = 10 ** 18

# One printf-style conversion: %[(key)][flags][width][.precision][length]type
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _number(digits: str) -> int:
    return int(digits) if len(digits) < 18 else _BIG


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) else default


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str,
         default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes) else size_of(value, _BIG)


def spec_size(spec: str) -> int:
    """The widths and precisions a `str.format` field's spec asks for (`>99999999`)."""
    return sum(_number(digits) for digits in _DIGITS.findall(spec))


def printf_size(text: str, args: Any) -> int:
    """`text % args`: the text, what the conversions ask for, and the values."""
    total = len(text)
    stars = 0
    for width, precision in _PRINTF.findall(text):
        for part in (width, precision):
            if part == "*":
                stars += 1
            elif part:
                total += _number(part)
    values = args if isinstance(args, tuple) else (args,)
    if stars:  # a `*` takes its width from the values
        total += sum(abs(v) for v in values if isinstance(v, int))
    return total + sum(size_of(v, _BIG) for v in values)


def _replaced(text: Any, old: Any, new: Any, count: Any) -> int:
    if not isinstance(text, str | bytes):
        return _length(text)
    try:
        found = text.count(old) if old else len(text) + 1
    except TypeError:  # replace() will say what is wrong
        return _length(text)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(0, _length(new) - len(old))


def _joined(separator: Any, items: Any) -> int:
    if not isinstance(items, list):
        return SCALAR_SIZE
    return (sum(size_of(item, _BIG) for item in items)
            + _length(separator) * max(0, len(items) - 1))


def _translated(text: Any, table: Any) -> int:
    if not isinstance(table, dict):
        return _length(text)
    longest = max((_length(v) for v in table.values() if isinstance(v, str | bytes)),
                  default=1)
    return _length(text) * max(1, longest)


# str and bytes methods: (receiver, args, kwargs) -> size of the result
_METHODS: dict[str, Callable[[Any, tuple[Any, ...], Mapping[str, Any]], int]] = {
    "center": lambda s, a, k: max(len(s), _int(_arg(a, k, 0, "width"))),
    "ljust": lambda s, a, k: max(len(s), _int(_arg(a, k, 0, "width"))),
    "rjust": lambda s, a, k: max(len(s), _int(_arg(a, k, 0, "width"))),
    "zfill": lambda s, a, k: max(len(s), _int(_arg(a, k, 0, "width"))),
    "expandtabs": lambda s, a, k: len(s) + s.count("\t" if isinstance(s, str) else b"\t")
    * _int(_arg(a, k, 0, "tabsize", 8), 8),
    "replace": lambda s, a, k: _replaced(s, _arg(a, k, 0, "old"), _arg(a, k, 1, "new"),
                                         _arg(a, k, 2, "count", -1)),
    "join": lambda s, a, k: _joined(s, _arg(a, k, 0, "iterable")),
    "translate": lambda s, a, k: _translated(s, _arg(a, k, 0, "table")),
}


def method_size(receiver: Any, name: str, args: tuple[Any, ...],
                kwargs: Mapping[str, Any]) -> int | None:
    """The size a str or bytes method will build, for the methods that can grow."""
    estimate = _METHODS.get(name)
    if estimate is None or not isinstance(receiver, str | bytes):
        return None
    return estimate(receiver, args, kwargs)


def _indented(value: Any, width: Any) -> int:
    lines = value.count("\n") + 1 if isinstance(value, str) else 1
    step = len(width) if isinstance(width, str) else _int(width)
    return _length(value) + lines * step


def _wrapped(value: Any, width: Any, wrapstring: Any) -> int:
    text = _length(value)
    lines = text // max(1, _int(width, 1)) + (value.count("\n") if isinstance(value, str)
                                              else 0) + 1
    return text + lines * (_length(wrapstring) if wrapstring is not None else 1)


def _format_filter(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    return printf_size(str(value), kwargs or args[1:])


# filters, by name: (args without the environment or context, kwargs) -> result size
_FILTERS: dict[str, Callable[[tuple[Any, ...], Mapping[str, Any]], int]] = {
    "center": lambda a, k: _length(a[0]) + _int(_arg(a, k, 1, "width", 80)),
    "indent": lambda a, k: _indented(a[0], _arg(a, k, 1, "width", 4)),
    "wordwrap": lambda a, k: _wrapped(a[0], _arg(a, k, 1, "width", 79),
                                      _arg(a, k, 3, "wrapstring")),
    "replace": lambda a, k: _replaced(str(a[0]), _arg(a, k, 1, "old"),
                                      _arg(a, k, 2, "new"), _arg(a, k, 3, "count", -1)),
    "format": lambda a, k: _format_filter(a[0], a, k),
    "join": lambda a, k: _joined(_arg(a, k, 1, "d", ""), a[0]),
    "batch": lambda a, k: size_of(a[0], _BIG) + (
        _int(_arg(a, k, 1, "linecount")) if _arg(a, k, 2, "fill_with") is not None else 0),
    "tojson": lambda a, k: size_of(a[0], _BIG) * (1 + _int(_arg(a, k, 1, "indent"))),
}


def filter_size(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int | None:
    """The size a filter will build, for the filters that can grow; `args[0]` is the
    filtered value."""
    estimate = _FILTERS.get(name)
    if estimate is None or not args:
        return None
    return estimate(args, kwargs)
