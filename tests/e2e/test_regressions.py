"""Engine bugs found while writing the docs, kept fixed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import Procctl

WriteDefinition = Callable[..., Path]


def test_a_loop_variable_shadows_a_param_and_gives_it_back(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    # Validation accepts reading `item` after the loop (it is a param); the engine used to
    # delete it at the loop's end, so the return step failed with "'item' is undefined".
    path = write_definition("""\
[process]
name = "shadow"

[process.params.item]
type = "str"
default = "outer"

[[steps]]
id = "loop"
kind = "foreach"
items = "[1, 2]"

[[steps.body]]
id = "show"
task = "log"
with = { message = "{{ item }}" }

[[steps]]
id = "done"
kind = "return"
value = { item = "{{ item }}", loop = "{{ results['loop'] }}" }
""")
    result = procctl("run", path, "--wait", "--json")
    assert result.code == 0, str(result)
    assert result.json()["result"] == {"item": "outer", "loop": [1, 2]}


def test_returning_results_does_not_hang(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    # `{{ results }}` used to be the engine's live dict: the return step stored the value
    # into that same dict, the result contained itself, storing it failed, and the
    # instance stayed `running` with `run --wait` waiting forever.
    path = write_definition("""\
[process]
name = "all-results"

[[steps]]
id = "first"
task = "log"
with = { message = "one" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results }}"
""")
    result = procctl("run", path, "--wait", "--json", timeout=30)
    assert result.code == 0, str(result)
    assert result.json()["result"] == {"first": "one"}
