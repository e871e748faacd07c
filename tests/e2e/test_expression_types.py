"""A field that is exactly one `{{ expression }}` keeps the value's type, whatever
braces it holds and whatever float it gives, through a checkpoint and out of `--json`."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from helpers import Procctl

WriteDefinition = Callable[..., Path]


TYPED = """
[process]
name = "typed-values"

[[steps]]
id = "values"
kind = "set"

    [steps.values]
    big = "{{ 'inf' | float }}"
    small = "{{ '-inf' | float }}"
    odd = "{{ 'nan' | float }}"
    nested = "{{ {'c': {'d': 1}} }}"
    spaced = "{{ {'c': {'d': 1}} }} "

[[steps]]
id = "pause"
kind = "checkpoint"

[[steps]]
id = "done"
kind = "return"
value = "{{ results['values'] }}"
"""


def test_one_expression_keeps_its_type_through_a_checkpoint(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED, "typed.toml")
    paused = shared_procctl.ok("run", path, "--wait", "--json").json()
    assert paused["status"] == "paused", paused
    resumed = shared_procctl.ok("resume", "--correlation-id", paused["correlation_id"],
                                "--json").json()["instance"]
    assert resumed["status"] == "completed", resumed
    result = resumed["result"]
    assert result["big"] == math.inf and result["small"] == -math.inf
    assert math.isnan(result["odd"])
    assert result["nested"] == result["spaced"] == {"c": {"d": 1}}
