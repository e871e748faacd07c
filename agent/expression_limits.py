"""The bounds of one evaluation: how long it may run, how large what it builds may be.

Jinja compiles a template to Python, so a template's work can only be watched where
the compiled code calls back into the environment. `agent/sandbox.py` makes it call
back at every loop iteration, call, attribute or item read, operator, filter, test and
piece of output. Each of those calls `tick()`, which enforces the deadline; the ones
that build a value check its size: before it is built where a small number decides a
large result (a width, a count, a repetition), else after (`checked`).

A size is about the length of a value's text: a string's length; a list's, tuple's,
set's or table's items (two per item, for the separators) and their sizes; an int's
digits; a `namespace()`'s attributes as a table; a few characters for anything else.
A value that refers to the same list twice counts it twice, as its text would. Values
handed in (params, results, data) may be larger: only what an evaluation builds is
bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace

from procctl.agent.durations import parse_duration

T = TypeVar("T")

#: A scalar that is not a str or an int (a float, a date, None) counts as this many.
SCALAR_SIZE = 8


@dataclass(frozen=True)
class Limits:
    """The agent's settings `expression_timeout` and `expression_max_size`."""

    timeout: float = 1.0  # seconds one evaluation may run
    max_size: int = 1_000_000  # the largest value or text an evaluation may build


_limits = Limits()


def set_limits(limits: Limits) -> None:
    """Set the bounds of every later evaluation in this process (the agent's config)."""
    global _limits
    _limits = limits


def apply_settings(settings: Mapping[str, Any]) -> None:
    """The agent's config.toml settings `expression_timeout` and `expression_max_size`."""
    set_limits(Limits(timeout=parse_duration(settings["expression_timeout"]),
                      max_size=int(settings["expression_max_size"])))


def current_limits() -> Limits:
    return _limits


class LimitExceeded(SecurityError):
    """An evaluation went past a bound; its step fails with `not allowed: ...`."""


class SliceExpired(Exception):
    """The evaluation ran past its slice of the event loop: run it again elsewhere."""


@dataclass
class Budget:
    """What one evaluation has left."""

    deadline: float
    timeout: float
    max_size: int
    #: the deadline ends a slice of the event loop, not the evaluation's time
    slice_only: bool
    output: int = 0


_current: ContextVar[Budget | None] = ContextVar("procctl_expression_budget", default=None)


@contextmanager
def budget(slice_seconds: float | None = None) -> Iterator[Budget]:
    """Open a budget for an evaluation, unless one is open already: the strings of one
    field share the budget of the field. With `slice_seconds` (less than the timeout),
    going past it raises `SliceExpired` instead of failing the evaluation."""
    active = _current.get()
    if active is not None:
        yield active
        return
    limits = _limits
    now = time.monotonic()
    if slice_seconds is not None and slice_seconds < limits.timeout:
        opened = Budget(now + slice_seconds, limits.timeout, limits.max_size, True)
    else:
        opened = Budget(now + limits.timeout, limits.timeout, limits.max_size, False)
    token = _current.set(opened)
    try:
        yield opened
    finally:
        _current.reset(token)


def tick() -> None:
    """Called by the sandbox's hooks: stop an evaluation that is past its deadline."""
    active = _current.get()
    if active is not None and time.monotonic() > active.deadline:
        if active.slice_only:
            raise SliceExpired
        raise LimitExceeded(f"it ran longer than {active.timeout:g} s "
                            "(the agent setting expression_timeout)")


def max_size() -> int:
    active = _current.get()
    return active.max_size if active is not None else _limits.max_size


def too_large(what: str, limit: int) -> LimitExceeded:
    return LimitExceeded(f"{what} would be larger than {limit:,} characters "
                         "(the agent setting expression_max_size)")


def check_size(size: int, what: str) -> None:
    """Refuse to build a value of `size` (an estimate made before building it)."""
    limit = max_size()
    if size > limit:
        raise too_large(what, limit)


def checked(value: T, what: str) -> T:
    """A value just built, if its size is within the bound."""
    limit = max_size()
    if size_of(value, limit) > limit:
        raise too_large(what, limit)
    return value


def count_output(value: T) -> T:
    """A piece of a template's text, counted against the evaluation's text bound."""
    active = _current.get()
    if active is not None:
        active.output += size_of(value, active.max_size - active.output)
        if active.output > active.max_size:
            raise too_large("the text", active.max_size)
    return value


def size_of(value: Any, stop: int) -> int:
    """About the length of `value`'s text; counting stops soon after it passes `stop`.
    A long count checks the deadline as it goes."""
    total = 0
    pending = [value]
    counted = 0
    while pending:
        item = pending.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, list | tuple | set | frozenset | dict):
            total += 2 + (4 if isinstance(item, dict) else 2) * len(item)
            if total > stop:
                return total
            counted += len(item)
            if counted > 4096:
                counted = 0
                tick()
            for child in (item.values() if isinstance(item, dict) else item):
                kind = type(child)
                if kind is str:
                    total += len(child)
                elif kind is int:
                    total += child.bit_length() // 3 + 1
                else:
                    pending.append(child)
            if isinstance(item, dict):
                pending.extend(item.keys())
        elif isinstance(item, Namespace):  # `namespace()`: its attributes are a dict
            pending.append(object.__getattribute__(item, "_Namespace__attrs"))
        else:
            total += SCALAR_SIZE
        if total > stop:
            return total
    return total
