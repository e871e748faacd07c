"""Durations as users write them: a number, or "30s", "90m", "2h", "7d", "1h30m", "250ms"."""

from __future__ import annotations

import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object, *, number_unit: str = "s") -> float:
    """Seconds in `value`; a bare number counts in `number_unit` (Frends' TTL is minutes).

    Raises ValueError with a message that says what is accepted.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value) * _UNIT_SECONDS[number_unit]
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text and _PART.sub("", text) == "":
            return sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
        try:
            return parse_duration(float(text), number_unit=number_unit)
        except ValueError:
            pass
    raise ValueError(
        f"{value!r} is not a duration; write a number of {_unit_name(number_unit)} "
        'or a string such as "30s", "90m", "2h", "7d" or "1h30m"'
    )


def _unit_name(unit: str) -> str:
    return {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}.get(
        unit, unit
    )


def format_duration(seconds: float) -> str:
    """A short human form: 0.25s, 42s, 5m 3s, 2h 10m, 3d 4h."""
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"
