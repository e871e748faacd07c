"""A checkpoint inside each kind of block, on the real engine in-process (the harness in
tests/engine/harness.py): pause there, stop the engine, start a new one on the same
store (nothing cached: the definition comes from the store, the position from the
snapshot), resume through the signal desk and go on at the same place, with the
block's state intact and nothing before the pause run twice.

A resume is either delivered to the new engine (as `procctl resume` with an agent
running), or written as `procctl resume`'s signal file before the new engine starts
and applied by its start-up ("queued"). Moved from tests/e2e/test_checkpoint_blocks.py
(same definitions and assertions); what stays there is the agent process killed with
SIGKILL and a real `procctl resume`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.harness import Engine


def pairs(args: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`-d name=value` and `--set name=value` as `procctl resume` reads them (a value
    that parses as JSON is JSON, else text): the payload and the edits."""
    found: dict[str, dict[str, Any]] = {"-d": {}, "--set": {}}
    for option, pair in zip(args[::2], args[1::2], strict=True):
        name, _, text = pair.partition("=")
        try:
            found[option][name] = json.loads(text)
        except json.JSONDecodeError:
            found[option][name] = text
    return found["-d"], found["--set"]


def pause_then_resume(engine: Engine, path: Path, correlation_id: str, *resume_args: str,
                      queued: bool = False, status: str = "completed") -> dict[str, Any]:
    """Run until the pause at the checkpoint "ask", restart the engine, resume with
    `resume_args` (-d, --set): the instance's final `show --json`. Its history shows
    every log step that ran, before and after."""
    paused = engine.run(path)
    assert paused["status"] == "paused", paused
    assert paused["correlation_id"] == correlation_id, paused
    assert paused["checkpoint"]["step_id"] == "ask", paused
    instance_id = paused["instance_id"]
    payload, edits = pairs(resume_args)
    if queued:
        engine.queue_signal(correlation_id, payload, set_values=edits)
        engine.restart()
        shown = engine.wait(instance_id, ("completed", "failed"))
        assert shown["status"] == status, shown
        return shown
    engine.restart()
    outcome = engine.resume(correlation_id, payload, set_values=edits,
                            source="cli:resume.json")
    assert outcome["signal"]["status"] == "applied", outcome
    instance = outcome["instance"]
    assert instance["instance_id"] == instance_id
    assert instance["status"] == status, instance
    return engine.show(instance_id)


def logged(history: list[dict[str, Any]]) -> list[str]:
    return [str(e["data"]["message"]) for e in history if e["kind"] == "log"]


# -- if ---------------------------------------------------------------------------------

IF_BRANCH = """
[process]
name = "block-if"

[[steps]]
id = "start"
task = "log"
with = { message = "start" }

[[steps]]
id = "route"
kind = "if"
condition = "true"

[[steps.then]]
id = "then-before"
task = "log"
with = { message = "then before" }
[[steps.then]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-if"
[[steps.then]]
id = "then-after"
task = "log"
with = { message = "then after, by {{ results['ask'].payload.by }}" }

[[steps.else]]
id = "other"
task = "log"
with = { message = "else" }

[[steps]]
id = "done"
kind = "return"
value = { route = "{{ results['route'] }}" }
"""


def test_checkpoint_in_an_if_branch(engine: Engine) -> None:
    path = engine.write(IF_BRANCH)
    instance = pause_then_resume(engine, path, "block-if", "-d", "by=ada")
    assert instance["result"] == {"route": "then after, by ada"}
    assert logged(instance["history"]) == [
        "start", "then before", "then after, by ada"]


# -- switch -----------------------------------------------------------------------------

SWITCH_CASE = """
[process]
name = "block-switch"

[[steps]]
id = "setup"
kind = "set"
values = { tier = "silver" }

[[steps]]
id = "route"
kind = "switch"

[[steps.cases]]
name = "gold"
when = "tier == 'gold'"
[[steps.cases.do]]
id = "gold-log"
task = "log"
with = { message = "gold" }

[[steps.cases]]
name = "silver"
when = "tier == 'silver'"
[[steps.cases.do]]
id = "silver-before"
task = "log"
with = { message = "silver before" }
[[steps.cases.do]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-switch"
[[steps.cases.do]]
id = "silver-after"
task = "log"
with = { message = "silver after, tier {{ tier }}, n={{ results['ask'].payload.n }}" }

[[steps.default]]
id = "default-log"
task = "log"
with = { message = "default" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['route'] }}"
"""


def test_checkpoint_in_a_switch_case_resumes_in_that_case(engine: Engine) -> None:
    path = engine.write(SWITCH_CASE)
    # Change the variable the cases test: a resume does not choose the case again.
    instance = pause_then_resume(engine, path, "block-switch", "-d", "n=3",
                                 "--set", "tier=gold", queued=True)
    assert instance["result"] == "silver after, tier gold, n=3"
    assert logged(instance["history"]) == ["silver before", "silver after, tier gold, n=3"]
    assert [e["data"] for e in instance["history"] if e["kind"] == "branch_taken"] == [
        {"branch": "silver"}]


# -- inclusive --------------------------------------------------------------------------

INCLUSIVE_BRANCH = """
[process]
name = "block-inclusive"

[[steps]]
id = "checks"
kind = "inclusive"

[[steps.branches]]
name = "first"
when = "true"
[[steps.branches.do]]
id = "first-log"
task = "log"
with = { message = "first" }

[[steps.branches]]
name = "second"
when = "true"
[[steps.branches.do]]
id = "second-before"
task = "log"
with = { message = "second before" }
[[steps.branches.do]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-inclusive"
[[steps.branches.do]]
id = "second-after"
task = "log"
with = { message = "second after {{ results['ask'].payload.n }}" }

[[steps.branches]]
name = "skipped"
when = "false"
[[steps.branches.do]]
id = "skipped-log"
task = "log"
with = { message = "skipped" }

[[steps.branches]]
name = "third"
when = "true"
[[steps.branches.do]]
id = "third-log"
task = "log"
with = { message = "third" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['checks'] }}"
"""


def test_checkpoint_in_an_inclusive_branch_after_a_restart(engine: Engine) -> None:
    path = engine.write(INCLUSIVE_BRANCH)
    instance = pause_then_resume(engine, path, "block-inclusive", "-d", "n=2", queued=True)
    # The branch that ran before the pause keeps its result; the later one still ran.
    assert instance["result"] == {"first": "first", "second": "second after 2",
                                  "third": "third"}
    assert logged(instance["history"]) == [
        "first", "second before", "second after 2", "third"]


# -- foreach ----------------------------------------------------------------------------

FOREACH_BODY = """
[process]
name = "block-foreach"

[[steps]]
id = "each"
kind = "foreach"
items = "['a', 'b', 'c']"
as = "letter"
index_as = "i"

[[steps.body]]
id = "before"
task = "log"
with = { message = "before {{ letter }}" }
[[steps.body]]
id = "second-only"
kind = "if"
condition = "i == 1"
[[steps.body.then]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-foreach"
[[steps.body]]
id = "after"
task = "log"
with = { message = "after {{ i }}:{{ letter }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['each'] }}"
"""


def test_checkpoint_in_a_foreach_body_after_a_restart(engine: Engine) -> None:
    path = engine.write(FOREACH_BODY)
    instance = pause_then_resume(engine, path, "block-foreach")
    # The resumed iteration kept its item and index; the first iteration's value is kept.
    assert instance["result"] == ["after 0:a", "after 1:b", "after 2:c"]
    assert logged(instance["history"]) == [
        "before a", "after 0:a", "before b", "after 1:b", "before c", "after 2:c"]


# -- while ------------------------------------------------------------------------------

WHILE_BODY = """
[process]
name = "block-while"

[[steps]]
id = "setup"
kind = "set"
values = { total = 0 }

[[steps]]
id = "loop"
kind = "while"
condition = "i < 3"
max_iterations = 5
index_as = "i"

[[steps.body]]
id = "add"
kind = "set"
values = { total = "{{ total + 10 }}" }
[[steps.body]]
id = "before"
task = "log"
with = { message = "before {{ i }}" }
[[steps.body]]
id = "middle"
kind = "if"
condition = "i == 1"
[[steps.body.then]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-while"
[[steps.body]]
id = "after"
task = "log"
with = { message = "after {{ i }} total {{ total }}" }

[[steps]]
id = "done"
kind = "return"
value = { loop = "{{ results['loop'] }}", total = "{{ total }}" }
"""


def test_checkpoint_in_a_while_body_keeps_the_index_and_results(engine: Engine) -> None:
    path = engine.write(WHILE_BODY)
    instance = pause_then_resume(engine, path, "block-while")
    assert instance["result"] == {
        "loop": ["after 0 total 10", "after 1 total 20", "after 2 total 30"],
        "total": 30,
    }
    assert logged(instance["history"]) == [
        "before 0", "after 0 total 10", "before 1", "after 1 total 20",
        "before 2", "after 2 total 30"]


# -- scope: do --------------------------------------------------------------------------

SCOPE_DO = """
[process]
name = "block-scope-do"

[[steps]]
id = "guard"
kind = "scope"

[[steps.do]]
id = "do-before"
task = "log"
with = { message = "do before" }
[[steps.do]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-scope-do"
[[steps.do]]
id = "boom"
kind = "throw"
message = "failed after the resume: {{ results['ask'].payload.why }}"

[[steps.catch]]
id = "handle"
task = "log"
with = { message = "caught {{ error.message }} at {{ error.step }}" }

[[steps.finally]]
id = "cleanup"
task = "log"
with = { message = "finally" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['guard'] }}"
"""


def test_checkpoint_in_a_scope_do_keeps_catch_and_finally_in_force(engine: Engine) -> None:
    path = engine.write(SCOPE_DO)
    instance = pause_then_resume(engine, path, "block-scope-do", "-d", "why=late",
                                 queued=True)
    # The failure after the resume was caught, and finally ran once, at the scope's end
    # (not when the instance paused).
    assert instance["result"] == "caught failed after the resume: late at boom"
    assert logged(instance["history"]) == [
        "do before", "caught failed after the resume: late at boom", "finally"]


# -- scope: catch -----------------------------------------------------------------------

SCOPE_CATCH = """
[process]
name = "block-scope-catch"

[[steps]]
id = "guard"
kind = "scope"
error_as = "problem"

[[steps.do]]
id = "boom"
kind = "throw"
message = "the first failure"

[[steps.catch]]
id = "catch-before"
task = "log"
with = { message = "catch before: {{ problem.message }}" }
[[steps.catch]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-scope-catch"
[[steps.catch]]
id = "catch-after"
kind = "return"

[steps.catch.value]
message = "{{ problem.message }}"
step = "{{ problem.step }}"
kind = "{{ problem.kind }}"
answer = "{{ results['ask'].payload.answer }}"

[[steps.finally]]
id = "cleanup"
task = "log"
with = { message = "finally" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['guard'] }}"
"""


def test_checkpoint_in_a_scope_catch_keeps_the_error_after_a_restart(engine: Engine) -> None:
    path = engine.write(SCOPE_CATCH)
    instance = pause_then_resume(engine, path, "block-scope-catch", "-d", "answer=ok", queued=True)
    assert instance["result"] == {"message": "the first failure", "step": "boom",
                                  "kind": "thrown", "answer": "ok"}
    assert logged(instance["history"]) == [
        "catch before: the first failure", "finally"]


# -- scope: finally ---------------------------------------------------------------------

SCOPE_FINALLY = """
[process]
name = "block-scope-finally"

[[steps]]
id = "guard"
kind = "scope"

[[steps.do]]
id = "do-log"
task = "log"
with = { message = "do" }
[[steps.do]]
id = "boom"
kind = "throw"
message = "pending failure"

[[steps.finally]]
id = "finally-before"
task = "log"
with = { message = "finally before" }
[[steps.finally]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-scope-finally"
[[steps.finally]]
id = "finally-after"
task = "log"
with = { message = "finally after {{ results['ask'].payload.n }}" }

[[steps]]
id = "after"
task = "log"
with = { message = "after the scope" }
"""


def test_checkpoint_in_a_scope_finally_still_raises_the_pending_failure(engine: Engine) -> None:
    path = engine.write(SCOPE_FINALLY)
    instance = pause_then_resume(engine, path, "block-scope-finally", "-d", "n=1",
                                 status="failed")
    # finally completed, then the failure from do was raised: the instance failed, and
    # the step after the scope did not run.
    assert instance["error"]["step_id"] == "boom"
    assert instance["error"]["kind"] == "thrown"
    assert instance["error"]["message"] == "pending failure"
    assert logged(instance["history"]) == [
        "do", "finally before", "finally after 1"]
