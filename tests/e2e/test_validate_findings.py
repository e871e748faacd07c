"""Errors and warnings through the real CLI: `validate` exits 3 on errors and 0 on warnings,
prints each finding with its place and hint, and `run` refuses errors but runs on warnings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import Procctl, Result, unique_key

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


# -- every finding through `procctl validate FILE --json` ------------------------------
#
# One small definition per kind of finding, each with exactly that one finding. All the
# files are written and validated at once (one `procctl validate` process each, run
# side by side) by a module fixture; each finding is then checked by its own test.

HEAD = '[process]\nname = "v"\n'
PARAMS = HEAD + '[process.params.amount]\ntype = "int"\ndefault = 5\n'

CHILD = """\
[process]
name = "child"
[process.params.n]
type = "int"
[process.params.label]
type = "str"
default = "x"

[[steps]]
id = "back"
kind = "return"
value = "{{ n }}"
"""


def call_source(file: str, params: str) -> str:
    return HEAD + f"""
[[steps]]
id = "first"
task = "log"
with = {{ message = "start" }}

[[steps]]
id = "kid"
kind = "call"
file = "{file}"
params = {params}
"""


@dataclass(frozen=True)
class Finding:
    """A definition with one finding, and what `validate --json` must say about it."""

    source: str
    #: text on the finding's line: the only line that contains it, or see `occurrence`
    at: str
    severity: str
    step_path: str | None
    step_id: str | None
    message: str  # a key phrase of the message
    #: a key phrase of the hint; None where the message itself says what to write
    hint: str | None
    #: which of several lines that contain `at` (0-based); None: it must be the only one
    occurrence: int | None = None
    #: other files in the definition's directory (plugins, called definitions)
    beside: tuple[tuple[str, str], ...] = ()

    def line(self) -> int:
        found = [n for n, content in enumerate(self.source.splitlines(), 1)
                 if self.at in content]
        if self.occurrence is None:
            assert len(found) == 1, f"{self.at!r} is on lines {found}"
            return found[0]
        return found[self.occurrence]


DUPLICATE = HEAD + """
[[steps]]
id = "same"
task = "log"
with = { message = "1" }
[[steps]]
id = "other"
task = "log"
with = { message = "2" }
[[steps]]
id = "same"
task = "log"
with = { message = "3" }
"""
DUPLICATE_FIRST = DUPLICATE.splitlines().index('id = "same"') + 1

SOME_PATHS_WARNING = "may read variable 'x' before it is set: only some paths to this step set it"

FINDINGS: dict[str, Finding] = {
    "toml-syntax": Finding(HEAD + """
[[steps]]
id = "done"
kind = return
""", "kind = return", "error", None, None,
        "TOML syntax error", "fix the TOML syntax at that line"),
    "unknown-kind": Finding(HEAD + """
[[steps]]
id = "route"
kind = "swtich"
""", 'kind = "swtich"', "error", "steps[0]", "route",
        "unknown step kind 'swtich'", "did you mean 'switch'?"),
    "unknown-field-of-a-step": Finding(HEAD + """
[[steps]]
id = "greet"
task = "log"
wiht = { message = "hi" }
""", "wiht =", "error", "steps[0]", "greet",
        "unknown field 'wiht' for a task step", "did you mean 'with'?"),
    "unknown-field-in-a-switch-case": Finding(HEAD + """
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
nmae = "big"
when = "true"
[[steps.cases.do]]
id = "greet"
task = "log"
with = { message = "hi" }
""", "nmae =", "error", "steps[0]", "route",
        "unknown field 'nmae' in cases[0]", "did you mean 'name'?"),
    "duplicate-id": Finding(
        DUPLICATE, 'id = "same"', "error", "steps[2]", "same",
        f"duplicate step id 'same' (first used at line {DUPLICATE_FIRST})",
        "give every step its own id", occurrence=1),
    "results-of-no-such-step": Finding(HEAD + """
[[steps]]
id = "fetch"
task = "log"
with = { message = "a" }
[[steps]]
id = "use"
task = "log"
with = { message = "{{ results['fecth'] }}" }
""", 'id = "use"', "error", "steps[1]", "use",
        "reads results['fecth'], but no step has that id", "did you mean 'fetch'?"),
    "results-of-a-later-step": Finding(HEAD + """
[[steps]]
id = "poll"
kind = "while"
condition = "false"
max_iterations = 2
[[steps.body]]
id = "use"
task = "log"
with = { message = "{{ results['later'] }}" }
[[steps]]
id = "later"
task = "log"
with = { message = "b" }
""", 'id = "use"', "error", "steps[0].body[0]", "use",
        "reads results['later'], but that step runs later", "before it"),
    "results-of-a-sibling-parallel-branch": Finding(HEAD + """
[[steps]]
id = "fan"
kind = "parallel"
[[steps.branches]]
name = "left"
[[steps.branches.do]]
id = "l"
task = "log"
with = { message = "left" }
[[steps.branches]]
name = "right"
[[steps.branches.do]]
id = "r"
task = "log"
with = { message = "{{ results['l'] }}" }
""", 'id = "r"', "error", "steps[0].branches[1].do[0]", "r",
        "reads results['l'], but step 'l' is in another branch of 'fan': it has not run "
        "on this path", "read it after the parallel step, when every branch has run"),
    "variable-never-set": Finding(HEAD + """
[[steps]]
id = "init"
kind = "set"
values = { total = 1 }
[[steps]]
id = "say"
task = "log"
with = { message = "{{ totl }}" }
""", 'id = "say"', "error", "steps[1]", "say",
        "reads variable 'totl', which no param or earlier step sets",
        "did you mean 'total'?"),
    "variable-set-in-an-if-then-only": Finding(PARAMS + """
[[steps]]
id = "pick"
kind = "if"
condition = "amount > 3"
[[steps.then]]
id = "mark"
kind = "set"
values = { x = 1 }
[[steps]]
id = "use"
task = "log"
with = { message = "{{ x }}" }
""", 'id = "use"', "warning", "steps[1]", "use", SOME_PATHS_WARNING, "every path"),
    "variable-set-in-a-scope-catch-only": Finding(HEAD + """
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "work"
task = "log"
with = { message = "hi" }
[[steps.catch]]
id = "mark"
kind = "set"
values = { x = 1 }
[[steps]]
id = "use"
task = "log"
with = { message = "{{ x }}" }
""", 'id = "use"', "warning", "steps[1]", "use", SOME_PATHS_WARNING, "every path"),
    "variable-of-a-parallel-branch-after-the-join": Finding(HEAD + """
[[steps]]
id = "fan"
kind = "parallel"
[[steps.branches]]
[[steps.branches.do]]
id = "mark"
kind = "set"
values = { inside = 1 }
[[steps]]
id = "after"
task = "log"
with = { message = "{{ inside }}" }
""", 'id = "after"', "error", "steps[1]", "after",
        "reads variable 'inside', which is set only inside a branch of parallel step 'fan'",
        "results['fan']"),
    "expression-syntax-in-when": Finding(PARAMS + """
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
when = "amount >"
[[steps.cases.do]]
id = "big"
task = "log"
with = { message = "big" }
""", 'when = "amount >"', "error", "steps[0]", "route",
        "when: syntax error in 'amount >'", "expression"),
    "checkpoint-in-parallel": Finding(HEAD + """
[[steps]]
id = "fan"
kind = "parallel"
[[steps.branches]]
[[steps.branches.do]]
id = "say"
task = "log"
with = { message = "l" }
[[steps.branches]]
[[steps.branches.do]]
id = "wait-here"
kind = "checkpoint"
""", 'id = "wait-here"', "error", "steps[0].branches[1].do[0]", "wait-here",
        "a checkpoint step cannot stand in a branch of parallel step 'fan'",
        "before or after the parallel step"),
    "scheduled-resume-without-checkpoint": Finding(HEAD + """
[[steps]]
id = "later"
kind = "scheduled_resume"
after = "5s"
""", 'id = "later"', "error", "steps[0]", "later",
        "scheduled_resume has no checkpoint before it to resume from",
        "add a checkpoint step"),
    "scheduled-resume-after-a-checkpoint-on-some-paths": Finding(PARAMS + """
[[steps]]
id = "pick"
kind = "if"
condition = "amount > 1"
[[steps.then]]
id = "save"
kind = "checkpoint"
continue = true
[[steps]]
id = "later"
kind = "scheduled_resume"
after = "5s"
""", 'id = "later"', "warning", "steps[1]", "later",
        "scheduled_resume may run before any checkpoint: only some paths to it pass one",
        "put a checkpoint on every path to it"),
    "unreachable-after-return": Finding(HEAD + """
[[steps]]
id = "done"
kind = "return"
value = 1
[[steps]]
id = "dead"
task = "log"
with = { message = "never" }
""", 'id = "dead"', "warning", "steps[1]", "dead",
        "can never run: return step 'done' before it always ends this block",
        "remove it or move it before 'done'"),
    "unreachable-after-throw": Finding(HEAD + """
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "stop"
kind = "throw"
message = "no"
[[steps.do]]
id = "dead"
task = "log"
with = { message = "never" }
[[steps.catch]]
id = "note"
task = "log"
with = { message = "{{ error.message }}" }
""", 'id = "dead"', "warning", "steps[0].do[1]", "dead",
        "can never run: throw step 'stop' before it always ends this block",
        "remove it or move it before 'stop'"),
    "bad-ttl": Finding(HEAD + """
[[steps]]
id = "wait"
kind = "checkpoint"
ttl = "7 parsecs"
""", 'ttl = "7 parsecs"', "error", "steps[0]", "wait",
        "ttl: '7 parsecs' is not a duration; write a number of minutes or a string such "
        'as "30s"', None),
    "bad-timeout": Finding(HEAD + """
[[steps]]
id = "nap"
task = "sleep"
with = { seconds = 1 }
timeout = "fast"
""", 'timeout = "fast"', "error", "steps[0]", "nap",
        "timeout: 'fast' is not a duration; write a number of seconds or a string such "
        'as "30s"', None),
    "bad-retry-field": Finding(HEAD + """
[[steps]]
id = "fetch"
task = "log"
with = { message = "hi" }
retry = { attempts = 3, backoff = "exponentail" }
""", "retry =", "error", "steps[0]", "fetch",
        "retry.backoff 'exponentail' is not fixed or exponential",
        "did you mean 'exponential'?"),
    "unknown-task": Finding(HEAD + """
[[steps]]
id = "work"
task = "lgo"
with = { message = "hi" }
""", 'task = "lgo"', "error", "steps[0]", "work",
        "unknown task 'lgo'", "did you mean 'log'?"),
    "plugin-module-not-found": Finding(HEAD + """
[[steps]]
id = "work"
task = "nosuchmod_e2e_probe:func"
with = { n = 1 }
""", "task =", "error", "steps[0]", "work",
        "task 'nosuchmod_e2e_probe:func': no module 'nosuchmod_e2e_probe' beside the "
        "definition or on the agent's Python path", "module:function"),
    "call-of-a-missing-file": Finding(
        call_source("missing.toml", "{}"), "file =", "error", "steps[1]", "kid",
        "call: no such file: ", "relative to this definition's directory"),
    "call-cycle": Finding(
        call_source("other.toml", "{}"), "file =", "error", "steps[1]", "kid",
        "call cycle: process.toml -> other.toml -> process.toml",
        "procctl validate other.toml",
        beside=(("other.toml", call_source("process.toml", "{}")),)),
    "call-with-an-unknown-param": Finding(
        call_source("child.toml", "{ n = 1, lable = 'y' }"), "params =", "error",
        "steps[1]", "kid", "call: child.toml has no param 'lable'", "did you mean 'label'?",
        beside=(("child.toml", CHILD),)),
    "while-without-max-iterations": Finding(HEAD + """
[[steps]]
id = "poll"
kind = "while"
condition = "true"
[[steps.body]]
id = "say"
task = "log"
with = { message = "x" }
""", 'id = "poll"', "error", "steps[0]", "poll",
        "while step needs 'max_iterations'", "it bounds the loop: max_iterations = 100"),
}

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


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Result]]:
    """Each finding's file (its own directory) and what `procctl validate FILE --json`
    did with it; under "text", the plain `procctl validate` of WARNING_THEN_ERROR."""
    root = tmp_path_factory.mktemp("findings")
    paths: dict[str, Path] = {}
    for name, finding in FINDINGS.items():
        folder = root / name
        folder.mkdir()
        for other, text in finding.beside:
            (folder / other).write_text(text, encoding="utf-8")
        paths[name] = folder / "process.toml"
        paths[name].write_text(finding.source, encoding="utf-8")
    paths["text"] = root / "text.toml"
    paths["text"].write_text(WARNING_THEN_ERROR, encoding="utf-8")
    runner = Procctl(root / "home")  # validate needs no agent: the home stays empty
    commands = [("validate", path, "--json") for name, path in paths.items()
                if name != "text"]
    results = runner.many(*commands, ("validate", paths["text"]))
    return {name: (path, result) for (name, path), result in zip(paths.items(), results,
                                                                 strict=True)}


@pytest.mark.parametrize("name", FINDINGS)
def test_validate_json_reports_each_finding_at_its_line(
        name: str, validated: dict[str, tuple[Path, Result]]) -> None:
    finding = FINDINGS[name]
    path, result = validated[name]
    is_error = finding.severity == "error"
    assert result.code == (3 if is_error else 0), str(result)
    assert result.err == "", str(result)
    report = result.json()
    assert (report["file"], report["valid"], report["errors"], report["warnings"]) == (
        str(path), not is_error, int(is_error), int(not is_error)), report
    [problem] = report["problems"]
    assert (problem["severity"], problem["file"], problem["line"], problem["step_path"],
            problem["step_id"]) == (finding.severity, str(path), finding.line(),
                                    finding.step_path, finding.step_id), problem
    assert finding.message in problem["message"], problem
    if finding.hint is not None:
        assert problem["hint"] is not None and finding.hint in problem["hint"], problem


def test_validate_text_lists_warning_and_error_in_line_order_with_hints(
        validated: dict[str, tuple[Path, Result]]) -> None:
    path, result = validated["text"]
    source = WARNING_THEN_ERROR
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
