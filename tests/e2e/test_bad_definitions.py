"""Definitions that cannot run: `validate` and `run` report where and why, exit 3, start nothing.

Each problem reads `Error: FILE:LINE: STEP-PATH (id 'ID'): MESSAGE` and `Hint: ...`. Each
case's problem is checked on the real loader: tests/engine/test_bad_definitions.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import Procctl

WriteDefinition = Callable[..., Path]


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


#: the cases also printed by the real commands (every case's problem is checked on the
#: loader in tests/engine/test_bad_definitions.py)
PRINTED = ("toml-syntax-error", "unknown-task")


@pytest.mark.parametrize("name", PRINTED)
def test_bad_definition_is_reported_by_validate_and_run(
        name: str, procctl: Procctl, write_definition: WriteDefinition) -> None:
    case = CASES[name]
    path = write_definition(case.source, f"{name}.toml")
    where = f"{path}:{_line(case.source, case.line_of)}" if case.line_of else str(path)
    if case.step:
        where += f": {case.step}"
    validated, ran = procctl.many(("validate", path), ("run", path, "--wait"))
    for result in (validated, ran):
        assert result.code == 3, str(result)
        assert result.out == "", str(result)
        errors = [line for line in result.err.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, str(result)
        assert errors[0].startswith(f"Error: {where}: {case.message}"), str(result)
        hints = [line for line in result.err.splitlines() if line.startswith("Hint: ")]
        assert len(hints) == 1 and case.hint in hints[0], str(result)
    assert not procctl.home.exists(), "a definition that cannot run must start nothing"


def test_a_bad_run_starts_no_agent_and_creates_no_instance(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(CASES["unknown-task"].source)
    assert procctl("run", path).code == 3
    status, listed = procctl.many(("agent", "status"), ("list", "--json"))
    assert status.code == 4, str(status)
    assert listed.code == 0 and listed.json() == []


MANY_PROBLEMS = """
[process]
name = "broken"

[[steps]]
id = "greet"
task = "lgo"
with = { message = "hi" }

[[steps]]
id = "total"
kind = "set"
values = { sum = "{{ 1 + }}" }

[[steps]]
id = "finish"
kind = "sett"
"""


def test_validation_reports_every_problem_at_once(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(MANY_PROBLEMS)
    as_json, as_text, ran = procctl.many(("validate", "--json", path), ("validate", path),
                                         ("run", path))
    assert as_json.code == 3, str(as_json)
    report = as_json.json()
    assert report["valid"] is False
    assert report["file"] == str(path)
    problems = report["problems"]
    assert [(p["step_path"], p["step_id"]) for p in problems] == [
        ("steps[0]", "greet"), ("steps[1]", "total"), ("steps[2]", "finish")]
    assert problems[0]["message"] == "unknown task 'lgo'"
    assert problems[0]["hint"] == "did you mean 'log'?"
    assert problems[0]["line"] == _line(MANY_PROBLEMS, 'task = "lgo"')
    assert problems[1]["message"].startswith("values: syntax error in '{{ 1 + }}'")
    assert problems[1]["line"] == _line(MANY_PROBLEMS, "values =")
    assert problems[2]["message"] == "unknown step kind 'sett'"
    assert problems[2]["hint"] == "did you mean 'set'?"
    assert problems[2]["line"] == _line(MANY_PROBLEMS, 'kind = "sett"')
    assert all(p["file"] == str(path) for p in problems)
    # The text form and `run` give the same three problems, one `Error:` line each.
    for result in (as_text, ran):
        assert result.code == 3, str(result)
        errors = [line for line in result.err.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 3, str(result)
        for error, problem in zip(errors, problems, strict=True):
            assert f":{problem['line']}: {problem['step_path']}" in error
            assert problem["message"] in error
    assert not procctl.home.exists()


def test_a_good_definition_validates(procctl: Procctl,
                                     write_definition: WriteDefinition) -> None:
    path = write_definition("""
[process]
name = "fine"
version = "3"
[process.params.count]
type = "int"

[[steps]]
id = "values"
kind = "set"
values = { a = "{{ count + 1 }}", b = "{{ a * 2 }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ b }}"
""")
    as_json, as_text = procctl.many(("validate", "--json", path), ("validate", path))
    assert as_json.code == 0, str(as_json)
    report = as_json.json()
    assert report["valid"] is True
    assert report["problems"] == []
    assert report["process"] == "fine" and report["version"] == "3"
    assert report["steps"] == 2
    assert report["params"] == [{"name": "count", "type": "int", "required": True,
                                 "default": None}]
    assert as_text.code == 0, str(as_text)
    assert "no problems" in as_text.out
    assert not procctl.home.exists(), "validate needs no agent"


def test_a_missing_file_is_reported(procctl: Procctl, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    for result in procctl.many(("validate", missing), ("run", missing)):
        assert result.code == 3, str(result)
        assert f"{missing}: no such file" in result.err
