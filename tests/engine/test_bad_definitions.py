"""Definitions that cannot run, on the real definition loader: each has exactly one
error, at its file, line and step, with its message and hint (what `validate` and `run`
print as `Error: FILE:LINE: STEP-PATH (id 'ID'): MESSAGE` and `Hint: ...`).

Moved from tests/e2e/test_bad_definitions.py (same definitions and assertions on the
problem; exit code 3 there is the DefinitionError here). What stays there: the printed
lines and exit codes of `validate` and `run` for two of the cases, that a bad run starts
no agent, every problem at once, a good definition, a missing file.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from engine.harness import Engine

from procctl.agent.errors import DefinitionError


@dataclass(frozen=True)
class Case:
    source: str
    message: str
    line_of: str | None  # text on the line the problem points at (its last occurrence)
    step: str | None  # "steps[0] (id 'a')"
    hint: str


CASES = {
    "toml-syntax-error": Case("""
[process]
name = "broken"

[[steps]]
id = "greet"
task = "log" with = { message = "hi" }
""", "TOML syntax error", 'task = "log" with', None, "fix the TOML syntax at that line"),
    "unknown-step-kind": Case("""
[process]
name = "broken"

[[steps]]
id = "greet"
kind = "tsak"
task = "log"
with = { message = "hi" }
""", "unknown step kind 'tsak'", 'kind = "tsak"', "steps[0] (id 'greet')",
        "did you mean 'task'?"),
    "unknown-field": Case("""
[process]
name = "broken"

[[steps]]
id = "greet"
task = "log"
wiht = { message = "hi" }
""", "unknown field 'wiht' for a task step", "wiht =", "steps[0] (id 'greet')",
        "did you mean 'with'?"),
    "duplicate-ids": Case("""
[process]
name = "broken"

[[steps]]
id = "greet"
task = "log"
with = { message = "one" }

[[steps]]
id = "greet"
task = "log"
with = { message = "two" }
""", "duplicate step id 'greet' (first used at line 6)", 'id = "greet"',
        "steps[1] (id 'greet')", "give every step its own id"),
    "expression-syntax-error": Case("""
[process]
name = "broken"

[[steps]]
id = "greet"
task = "log"
with = { message = "{{ 1 + }}" }
""", "with: syntax error in '{{ 1 + }}'", "with =", "steps[0] (id 'greet')",
        "expressions use Jinja syntax"),
    "unknown-variable": Case("""
[process]
name = "broken"
[process.params.name]
type = "str"

[[steps]]
id = "check"
kind = "if"
condition = "name != ''"

[[steps.then]]
id = "greet"
task = "log"
with = { message = "Hello, {{ nmae }}!" }
""", "reads variable 'nmae', which no param or earlier step sets", 'id = "greet"',
        "steps[0].then[0] (id 'greet')", "did you mean 'name'?"),
    "unknown-task": Case("""
[process]
name = "broken"

[[steps]]
id = "greet"
task = "lgo"
with = { message = "hi" }
""", "unknown task 'lgo'", 'task = "lgo"', "steps[0] (id 'greet')", "did you mean 'log'?"),
    "set-reads-a-later-value": Case("""
[process]
name = "broken"

[[steps]]
id = "values"
kind = "set"
values = { a = "{{ b + 1 }}", b = "{{ 2 }}" }
""", "reads variable 'b', which no param or earlier step sets", 'id = "values"',
        "steps[0] (id 'values')", "set it in an earlier set step"),
}


def _line(source: str, text: str) -> int:
    """The 1-based line of `text` in the file written from `source` (last match)."""
    return max(n for n, line in enumerate(source.splitlines(), 1) if text in line)


@pytest.mark.parametrize("name", CASES)
def test_bad_definition_is_one_error_at_its_place_with_a_hint(
        name: str, engine: Engine) -> None:
    case = CASES[name]
    path = engine.write(case.source, f"{name}.toml")
    where = f"{path}:{_line(case.source, case.line_of)}" if case.line_of else str(path)
    if case.step:
        where += f": {case.step}"
    with pytest.raises(DefinitionError) as raised:
        engine.load(path)
    assert raised.value.exit_code == 3
    errors = [p for p in raised.value.problems if p.severity == "error"]
    assert len(errors) == 1, [p.render() for p in raised.value.problems]
    [error] = errors
    assert f"{error.location()}: {error.message}".startswith(f"{where}: {case.message}"), \
        error.render()
    assert error.hint is not None and case.hint in error.hint, error
    assert engine.instances() == [], "a definition that cannot run must start nothing"
