"""Errors and warnings through the real CLI: `validate` exits 3 on errors and 0 on warnings,
prints each finding with its place and hint, and `run` refuses errors but runs on warnings.
Each kind of finding is checked on the real loader: tests/engine/test_validate_findings.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import Procctl, unique_key

WriteDefinition = Callable[..., Path]

# `x` is set only when the if's condition holds: a warning at the step that reads it.
WARNING_ONLY = """\
[process]
name = "{name}"
[process.params.amount]
type = "int"
default = 5

[[steps]]
id = "pick"
kind = "if"
condition = "amount > 3"
[[steps.then]]
id = "mark"
kind = "set"
values = { x = "big" }

[[steps]]
id = "use"
kind = "return"
value = "{{ x }} {{ amount }}"
"""
WARNING = "may read variable 'x' before it is set: only some paths to this step set it"

# An error (a variable nothing sets) before a warning (a step after a return).
ERROR_AND_WARNING = """\
[process]
name = "{name}"

[[steps]]
id = "say"
task = "log"
with = { message = "{{ totl }}" }

[[steps]]
id = "done"
kind = "return"
value = 1

[[steps]]
id = "dead"
task = "log"
with = { message = "never" }
"""

CLEAN = """\
[process]
name = "{name}"

[[steps]]
id = "done"
kind = "return"
value = 1
"""


def line_of(source: str, step_id: str) -> int:
    """The line of the step's `id = "..."`, where its findings point."""
    [found] = [n for n, content in enumerate(source.splitlines(), 1)
               if content == f'id = "{step_id}"']
    return found


def test_validate_exits_3_on_errors_and_0_on_warnings_or_nothing(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    warned_source = WARNING_ONLY.replace("{name}", "warned")
    warned = write_definition(warned_source, "warned.toml")
    broken_source = ERROR_AND_WARNING.replace("{name}", "broken")
    broken = write_definition(broken_source, "broken.toml")
    clean = write_definition(CLEAN.replace("{name}", "clean"), "clean.toml")
    on_warning, on_error, on_clean = procctl.many(
        ("validate", warned), ("validate", broken), ("validate", clean))

    assert on_warning.code == 0, str(on_warning)
    err = on_warning.err.splitlines()
    assert err == [
        f"Warning: {warned}:{line_of(warned_source, 'use')}: steps[1] (id 'use'): "
        + WARNING,
        "Hint: set it before the branch or loop that sets it, or on every path",
    ], str(on_warning)
    assert f"✓ {warned}: process warned, 3 step(s), 1 warning(s)" in on_warning.out

    assert on_error.code == 3, str(on_error)
    errors = [text for text in on_error.err.splitlines() if text.startswith("Error: ")]
    assert errors == [
        f"Error: {broken}:{line_of(broken_source, 'say')}: steps[0] (id 'say'): "
        "reads variable 'totl', which no param or earlier step sets"], str(on_error)
    warned_lines = [text for text in on_error.err.splitlines() if text.startswith("Warning: ")]
    assert warned_lines == [
        f"Warning: {broken}:{line_of(broken_source, 'dead')}: steps[2] (id 'dead'): "
        "can never run: return step 'done' before it always ends this block"], str(on_error)
    assert "✓" not in on_error.out

    assert on_clean.code == 0, str(on_clean)
    assert on_clean.err == ""
    assert f"✓ {clean}: process clean, 1 step(s), no problems" in on_clean.out
    assert not procctl.home.exists(), "validate needs no agent"


def test_validate_json_counts_and_lists_errors_and_warnings(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    broken_source = ERROR_AND_WARNING.replace("{name}", "broken")
    broken = write_definition(broken_source, "broken.toml")
    warned_source = WARNING_ONLY.replace("{name}", "warned")
    warned = write_definition(warned_source, "warned.toml")
    on_error, on_warning = procctl.many(("validate", "--json", broken),
                                        ("validate", "--json", warned))

    assert on_error.code == 3, str(on_error)
    report = on_error.json()
    assert (report["file"], report["valid"], report["errors"], report["warnings"]) == (
        str(broken), False, 1, 1)
    error, warning = report["problems"]
    assert error == {
        "file": str(broken), "line": line_of(broken_source, "say"),
        "step_path": "steps[0]", "step_id": "say", "severity": "error",
        "message": "reads variable 'totl', which no param or earlier step sets",
        "hint": "declare it under [process.params] or set it in an earlier set step"}
    assert warning == {
        "file": str(broken), "line": line_of(broken_source, "dead"),
        "step_path": "steps[2]", "step_id": "dead", "severity": "warning",
        "message": "can never run: return step 'done' before it always ends this block",
        "hint": "remove it or move it before 'done'"}

    assert on_warning.code == 0, str(on_warning)
    report = on_warning.json()
    assert (report["valid"], report["errors"], report["warnings"]) == (True, 0, 1)
    [warning] = report["problems"]
    assert (warning["severity"], warning["line"], warning["step_id"], warning["message"]) == (
        "warning", line_of(warned_source, "use"), "use", WARNING)
    assert warning["hint"]
    assert on_warning.err == ""  # JSON mode keeps stderr for real failures


def test_run_refuses_a_definition_with_errors_and_creates_no_instance(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(ERROR_AND_WARNING.replace("{name}", "broken"))
    ran = procctl("run", path, "--wait")
    assert ran.code == 3, str(ran)
    assert ran.out == ""
    assert any(text.startswith("Error: ") and "'totl'" in text
               for text in ran.err.splitlines()), str(ran)
    assert procctl.ok("list", "--json").json() == []


def test_run_goes_on_with_warnings_and_prints_them(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    name = f"warned-{unique_key()}"
    source = WARNING_ONLY.replace("{name}", name)
    path = write_definition(source)
    ran = shared_procctl.ok("run", path, "--wait", "--json")
    assert (f"Warning: {path}:{line_of(source, 'use')}: steps[1] (id 'use'): "
            + WARNING) in ran.err
    assert "Hint: " in ran.err
    summary = ran.json()
    assert summary["status"] == "completed", summary
    assert summary["result"] == "big 5"
    [listed] = shared_procctl.ok("list", "--process", name, "--json").json()
    assert listed["status"] == "completed"


# -- the text output of several findings -------------------------------------------------
#
# Every kind of finding (its severity, line, step, message and hint) is checked on the
# real loader in tests/engine/test_validate_findings.py.

HEAD = '[process]\nname = "v"\n'

# A warning (a dead step in a loop body) on an earlier line than an error (a misspelt
# variable): the text output lists findings in line order, not errors first.
WARNING_THEN_ERROR = HEAD + """
[[steps]]
id = "init"
kind = "set"
values = { total = 1 }

[[steps]]
id = "loop"
kind = "foreach"
items = "[1, 2]"
[[steps.body]]
id = "done"
kind = "return"
value = "{{ item }}"
[[steps.body]]
id = "dead"
task = "log"
with = { message = "never" }

[[steps]]
id = "say"
task = "log"
with = { message = "{{ totl }}" }
"""


def test_validate_text_lists_warning_and_error_in_line_order_with_hints(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    source = WARNING_THEN_ERROR
    path = write_definition(source, "text.toml")
    result = procctl("validate", path)
    assert result.code == 3, str(result)
    assert result.out == "", str(result)
    assert result.err.splitlines() == [
        f"Warning: {path}:{line_of(source, 'dead')}: steps[1].body[1] (id 'dead'): "
        "can never run: return step 'done' before it always ends this block",
        "Hint: remove it or move it before 'done'",
        f"Error: {path}:{line_of(source, 'say')}: steps[2] (id 'say'): "
        "reads variable 'totl', which no param or earlier step sets",
        "Hint: did you mean 'total'?",
    ], str(result)


LIVENESS = """\
[process]
name = "live"

[[steps]]
id = "first"
task = "log"
with = { message = "one" }

[[steps]]
id = "early"
kind = "checkpoint"
correlation_id = "live-early"
continue = true

[[steps]]
id = "count"
task = "log"
with = { message = "{{ results | length }} results so far" }

[[steps]]
id = "values"
kind = "set"
values = { kept = 1, dropped = 2, also = "{{ dropped }}" }

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "live"

[[steps]]
id = "use"
kind = "return"
value = { kept = "{{ kept }}", first = "{{ results['first'] }}" }
"""


def test_validate_json_lists_what_each_checkpoint_stores(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    # (moved here from the checkpoints' end-to-end test, whose snapshot checks run on
    # the engine now: tests/engine/test_checkpoints.py)
    report = procctl.ok("validate", "--json", write_definition(LIVENESS)).json()
    assert report["checkpoints"] == {
        "early": {"variables": [], "results": ["*"],  # `{{ results }}` reads them all
                  "payload": {"declared": False, "fields": []}},
        "wait": {"variables": ["kept"], "results": ["first"],
                 "payload": {"declared": False, "fields": []}},
    }
