from __future__ import annotations

import pytest

from procctl.agent.durations import format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("90m", 5400), ("2h", 7200), ("7d", 604800), ("1h30m", 5400),
    ("250ms", 0.25), (" 1m 5s ", 65), (3, 3), (1.5, 1.5), ("12", 12),
])
def test_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_bare_number_unit_is_the_callers() -> None:
    assert parse_duration(5, number_unit="m") == 300


@pytest.mark.parametrize("bad", ["", "soon", "5x", "-3s", -1, True, None, [1]])
def test_bad_durations_say_what_is_accepted(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(bad)


def test_format() -> None:
    assert format_duration(0.25) == "0.25s"
    assert format_duration(125) == "2m 5s"
    assert format_duration(7200) == "2h"
    assert format_duration(90000) == "1d 1h"
