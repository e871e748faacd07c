"""Every kind of validation finding, from the real definition loader: each small
definition has exactly one finding, which must be an error or a warning as expected, at
its line, step path and id, with its message and hint, as `procctl validate --json`
reports it (tests/engine/harness.py: Engine.validate).

Moved from tests/e2e/test_validate_findings.py (same definitions and assertions; exit
code 3 there is `valid` false here: validate exits 3 exactly when there are errors).
What stays there: validate's exit codes, its printed lines and JSON, and run refusing
errors and going on with warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from engine.harness import Engine

# -- every finding, as `procctl validate FILE --json` reports it ------------------------
#
# One small definition per kind of finding, each with exactly that one finding, written
# in a directory of its own and loaded by the real loader.

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


@pytest.mark.parametrize("name", FINDINGS)
def test_validation_reports_each_finding_at_its_line(
        name: str, engine: Engine, tmp_path: Path) -> None:
    finding = FINDINGS[name]
    folder = tmp_path / name
    folder.mkdir()
    for other, text in finding.beside:
        (folder / other).write_text(text, encoding="utf-8")
    path = folder / "process.toml"
    path.write_text(finding.source, encoding="utf-8")
    is_error = finding.severity == "error"
    report: dict[str, Any] = engine.validate(path)
    assert (report["valid"], report["errors"], report["warnings"]) == (
        not is_error, int(is_error), int(not is_error)), report
    [problem] = report["problems"]
    assert (problem["severity"], problem["file"], problem["line"], problem["step_path"],
            problem["step_id"]) == (finding.severity, str(path), finding.line(),
                                    finding.step_path, finding.step_id), problem
    assert finding.message in problem["message"], problem
    if finding.hint is not None:
        assert problem["hint"] is not None and finding.hint in problem["hint"], problem
