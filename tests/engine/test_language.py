"""The process language's newer step kinds, run by the real engine in-process (the
harness in tests/engine/harness.py): switch, inclusive, parallel, while, return inside
loops, scope, intermediate_return, call, retry policies and task plugins.

Moved from tests/e2e/test_language.py (same definitions, same assertions); what a user
meets through `procctl` (the text of `run --wait` at an intermediate result, an
entry-point plugin found by the agent process) stays there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from engine.harness import Engine, Launch
from helpers import unique_key

History = list[dict[str, Any]]


def toml(value: Any) -> str:
    """A TOML literal for a string or a list of strings (JSON's syntax is valid TOML here)."""
    return json.dumps(value)


def of_kind(history: History, kind: str) -> History:
    return [e for e in history if e["kind"] == kind]


def logged(history: History) -> list[str]:
    """The messages of the instance's log steps, in the order they ran."""
    return [str(e["data"]["message"]) for e in of_kind(history, "log")]


SWITCH = """
[process]
name = "lang-switch"
[process.params.amount]
type = "int"

[[steps]]
id = "route"
kind = "switch"

[[steps.cases]]
name = "big"
when = "amount > 1000"
[[steps.cases.do]]
id = "big-log"
task = "log"
with = { message = "big {{ amount }}" }

[[steps.cases]]
when = "amount > 100"
[[steps.cases.do]]
id = "mid-log"
task = "log"
with = { message = "mid {{ amount }}" }
[[steps.cases.do]]
id = "mid-note"
kind = "set"
values = { noted = true }

[[steps.default]]
id = "small-log"
task = "log"
with = { message = "small {{ amount }}" }

[[steps]]
id = "done"
kind = "return"
value = { route = "{{ results['route'] }}", result = "{{ result }}" }
"""


def test_switch_runs_the_first_case_that_holds_else_the_default(engine: Engine) -> None:
    path = engine.write(SWITCH)
    big, mid, small = engine.run_many(Launch(path, cli=["amount=5000"]),
                                      Launch(path, cli=["amount=500"]),
                                      Launch(path, cli=["amount=5"]))

    # 5000 also satisfies "amount > 100": only the first case that holds runs.
    assert big["status"] == "completed", big
    assert big["result"] == {"route": "big 5000", "result": "big 5000"}
    big_history, mid_history = (engine.history(big["instance_id"]),
                                engine.history(mid["instance_id"]))
    assert logged(big_history) == ["big 5000"]
    taken = of_kind(big_history, "branch_taken")
    assert [(e["step_id"], e["data"]) for e in taken] == [("route", {"branch": "big"})]

    # An unnamed case is named by its number; the result is what its last step left
    # (the set step after the log does not change it).
    assert mid["result"] == {"route": "mid 500", "result": "mid 500"}
    assert logged(mid_history) == ["mid 500"]
    assert [e["data"] for e in of_kind(mid_history, "branch_taken")] == [
        {"branch": "2"}]
    started = {e["step_id"]: e["step_path"]
               for e in of_kind(mid_history, "step_started")}
    assert started["mid-log"] == "steps[0].cases[1].do[0]"

    # No case holds: the default runs.
    assert small["result"] == {"route": "small 5", "result": "small 5"}


INCLUSIVE = """
[process]
name = "lang-inclusive"
[process.params.amount]
type = "int"

[[steps]]
id = "checks"
kind = "inclusive"

[[steps.branches]]
name = "audit"
when = "amount > 100"
[[steps.branches.do]]
id = "audit-log"
task = "log"
with = { message = "audit {{ amount }}" }
[[steps.branches.do]]
id = "lower"
kind = "set"
values = { amount = 0 }

[[steps.branches]]
name = "never"
when = "amount < 0"
[[steps.branches.do]]
id = "never-log"
task = "log"
with = { message = "never" }

[[steps.branches]]
when = "amount > 10"
[[steps.branches.do]]
id = "notify-log"
task = "log"
with = { message = "notify {{ amount }}" }

[[steps.branches]]
name = "always"
when = "true"
[[steps.branches.do]]
id = "always-log"
task = "log"
with = { message = "always" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['checks'] }}"
"""


def test_inclusive_runs_every_branch_that_holds_in_file_order(engine: Engine) -> None:
    summary = engine.run(INCLUSIVE, cli=["amount=500"])
    assert summary["status"] == "completed", summary
    # The conditions were evaluated once, at the start: "audit" set amount to 0, and
    # the third branch ("amount > 10") still ran.
    assert summary["result"] == {"audit": "audit 500", "3": "notify 0", "always": "always"}
    steps = engine.history(summary["instance_id"])
    assert logged(steps) == ["audit 500", "notify 0", "always"]
    taken = of_kind(steps, "branch_taken")
    assert [e["data"] for e in taken] == [{"branches": ["audit", "3", "always"]}]


PARALLEL = """
[process]
name = "lang-parallel"

[[steps]]
id = "base"
kind = "set"
values = { shared = "before" }

[[steps]]
id = "fan"
kind = "parallel"

[[steps.branches]]
name = "left"
[[steps.branches.do]]
id = "left-set"
kind = "set"
values = { shared = "left" }
[[steps.branches.do]]
id = "left-sleep"
task = "sleep"
with = { seconds = "0.5s" }
[[steps.branches.do]]
id = "left-log"
task = "log"
with = { message = "left saw {{ shared }}" }

[[steps.branches]]
name = "right"
[[steps.branches.do]]
id = "right-sleep"
task = "sleep"
with = { seconds = "0.5s" }
[[steps.branches.do]]
id = "right-return"
kind = "return"
value = "right value"

[[steps.branches]]
[[steps.branches.do]]
id = "quiet-set"
kind = "set"
values = { shared = "quiet" }

[[steps]]
id = "done"
kind = "return"

[steps.value]
fan = "{{ results['fan'] }}"
shared = "{{ shared }}"
inner = "{{ results['left-log'] }}"
slept = "{{ results['right-sleep'] }}"
"""


def test_parallel_branches_overlap_and_join_with_their_values(engine: Engine) -> None:
    summary = engine.run(PARALLEL)
    assert summary["status"] == "completed", summary
    assert summary["result"] == {
        # A branch's value: its return, else the result its last step left (a set
        # step leaves none).
        "fan": {"left": "left saw left", "right": "right value", "3": None},
        "shared": "before",  # what branches set stays in them
        "inner": "left saw left",  # results of inner steps are merged at the join
        "slept": 0.5,
    }
    events = engine.history(summary["instance_id"])
    steps = [(e["kind"], e["step_id"]) for e in events
             if e["kind"] in ("step_started", "step_finished")]
    # Both sleeps started before either finished: the branches ran at the same time.
    first_finish = min(steps.index(("step_finished", "left-sleep")),
                       steps.index(("step_finished", "right-sleep")))
    assert steps.index(("step_started", "left-sleep")) < first_finish
    assert steps.index(("step_started", "right-sleep")) < first_finish
    assert steps[-2:] == [("step_started", "done"), ("step_finished", "done")]
    assert steps.index(("step_finished", "fan")) > max(
        steps.index(("step_finished", "left-log")), steps.index(("step_finished", "right-return")))


SERIAL = """
[process]
name = "lang-parallel-serial"

[[steps]]
id = "fan"
kind = "parallel"
max_concurrency = 1

[[steps.branches]]
name = "one"
[[steps.branches.do]]
id = "one-sleep"
task = "sleep"
with = { seconds = "0.2s" }
[[steps.branches.do]]
id = "one-log"
task = "log"
with = { message = "one" }

[[steps.branches]]
name = "two"
[[steps.branches.do]]
id = "two-sleep"
task = "sleep"
with = { seconds = "0.2s" }
[[steps.branches.do]]
id = "two-log"
task = "log"
with = { message = "two" }
"""


def test_parallel_max_concurrency_one_runs_the_branches_one_at_a_time(engine: Engine) -> None:
    summary = engine.run(SERIAL)
    assert summary["status"] == "completed", summary
    assert summary["result"] == {"one": "one", "two": "two"}
    inner = [(str(e["step_id"]).split("-")[0], e["kind"])
             for e in engine.history(summary["instance_id"])
             if e["kind"] in ("step_started", "step_finished")
             and e["step_id"] not in ("fan", None)]
    one = [i for i, (branch, _) in enumerate(inner) if branch == "one"]
    two = [i for i, (branch, _) in enumerate(inner) if branch == "two"]
    assert len(one) == len(two) == 4, inner
    # Every step of one branch finished before any step of the other started.
    assert max(one) < min(two) or max(two) < min(one), inner


PARALLEL_FAIL = """
[process]
name = "lang-parallel-fail-{variant}"

[[steps]]
id = "guard"
kind = "scope"

[[steps.do]]
id = "fan"
kind = "parallel"

[[steps.do.branches]]
name = "slow"
[[steps.do.branches.do]]
id = "slow-sleep"
task = "sleep"
with = {{ seconds = "5s" }}
[[steps.do.branches.do]]
id = "slow-log"
task = "log"
with = {{ message = "slow branch finished" }}

[[steps.do.branches]]
name = "bad"
[[steps.do.branches.do]]
id = "bad-log"
task = "log"
with = {{ message = "bad branch starts" }}
[[steps.do.branches.do]]
id = "bad-throw"
kind = "throw"
message = "branch broke"

{catch}

[[steps]]
id = "after"
task = "log"
with = {{ message = "after the parallel step" }}

[[steps]]
id = "done"
kind = "return"
value = "{{{{ results['guard'] }}}}"
"""


CATCH_PARALLEL = """
[[steps.catch]]
id = "handled"
kind = "return"
value = { caught = "{{ error.message }}", step = "{{ error.step }}", kind = "{{ error.kind }}" }
"""


def test_a_failing_parallel_branch_fails_the_instance_unless_a_scope_catches_it(
        engine: Engine) -> None:
    # The scope without a catch lets the failure through: the same as no scope.
    failing = engine.write(PARALLEL_FAIL.format(variant="uncaught", catch=""),
                           name="uncaught.toml")
    caught = engine.write(PARALLEL_FAIL.format(variant="caught", catch=CATCH_PARALLEL),
                          name="caught.toml")
    failed, done = engine.run_many(Launch(failing), Launch(caught))
    failed_history, done_history = (engine.history(failed["instance_id"]),
                                    engine.history(done["instance_id"]))
    assert failed["status"] == "failed"
    assert failed["error"]["step_id"] == "bad-throw"
    assert failed["error"]["step_path"] == "steps[0].do[0].branches[1].do[1]"
    assert failed["error"]["kind"] == "thrown"
    assert failed["error"]["message"] == "branch broke"
    # The slow branch was cancelled, and nothing after the parallel step ran.
    assert logged(failed_history) == ["bad branch starts"]

    assert done["status"] == "completed", done
    # The scope's result is its catch block's value.
    assert done["result"] == {"caught": "branch broke", "step": "bad-throw", "kind": "thrown"}
    assert logged(done_history) == ["bad branch starts", "after the parallel step"]
    caught_events = of_kind(done_history, "scope_caught")
    assert [e["data"]["error"]["step"] for e in caught_events] == ["bad-throw"]


WHILE = """
[process]
name = "lang-while"
[process.params.limit]
type = "int"
[process.params.i]
type = "str"
default = "outer"

[[steps]]
id = "loop"
kind = "while"
condition = "i < limit"
max_iterations = 4
index_as = "i"

[[steps.body]]
id = "odd"
kind = "if"
condition = "i % 2 == 1"
[[steps.body.then]]
id = "early"
kind = "return"
value = "odd {{ i }}"

[[steps.body]]
id = "even"
task = "log"
with = { message = "even {{ i }}" }

[[steps]]
id = "done"
kind = "return"
value = { loop = "{{ results['loop'] }}", i = "{{ i }}" }
"""


def test_while_loops_while_its_condition_holds_up_to_max_iterations(engine: Engine) -> None:
    path = engine.write(WHILE)
    done, four, failed = engine.run_many(Launch(path, cli=["limit=3"]),
                                         Launch(path, cli=["limit=4"]),
                                         Launch(path, cli=["limit=9"]))
    assert done["status"] == "completed", done
    # A return ends the odd iterations with its value (the log step after it did not
    # run, or the value would be its message); the loop goes on after it. The index
    # variable shadowed the param `i`, which is back after the loop.
    assert done["result"] == {"loop": ["even 0", "odd 1", "even 2"], "i": "outer"}

    # Exactly max_iterations iterations is allowed.
    assert four["status"] == "completed", four
    assert four["result"] == {"loop": ["even 0", "odd 1", "even 2", "odd 3"], "i": "outer"}

    assert failed["status"] == "failed"
    assert failed["error"]["kind"] == "max_iterations"
    assert failed["error"]["step_id"] == "loop"
    assert "max_iterations = 4" in failed["error"]["message"]
    assert "i < limit" in failed["error"]["message"]


FOREACH_RETURN = """
[process]
name = "lang-foreach-return"

[[steps]]
id = "each"
kind = "foreach"
items = "[1, 2, 3, 4]"
as = "n"

[[steps.body]]
id = "check"
kind = "if"
condition = "n is even"
[[steps.body.then]]
id = "skip"
kind = "return"
value = { even = "{{ n }}" }

[[steps.body]]
id = "odd-log"
task = "log"
with = { message = "odd {{ n }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['each'] }}"
"""


def test_return_in_a_foreach_body_ends_only_that_iteration(engine: Engine) -> None:
    summary = engine.run(FOREACH_RETURN)
    assert summary["status"] == "completed", summary
    # Each even item's iteration ended at its return; the loop and the process went on.
    assert summary["result"] == ["odd 1", {"even": 2}, "odd 3", {"even": 4}]


SCOPE = """
[process]
name = "lang-scope"
[process.params.fail]
type = "bool"

[[steps]]
id = "before"
kind = "set"
values = { error = "set before the scope" }

[[steps]]
id = "guard"
kind = "scope"

[[steps.do]]
id = "maybe"
kind = "if"
condition = "fail"
[[steps.do.then]]
id = "boom"
kind = "throw"
message = "it broke"
[[steps.do]]
id = "work"
task = "log"
with = { message = "worked" }

[[steps.catch]]
id = "handle"
task = "log"
with = { message = "caught: {{ error.message }}" }
[[steps.catch]]
id = "keep"
kind = "set"
values = { seen = "{{ error }}" }
[[steps.catch]]
id = "give"
kind = "return"
value = "recovered"

[[steps.finally]]
id = "cleanup"
task = "log"
with = { message = "cleanup" }

[[steps]]
id = "done"
kind = "return"

[steps.value]
guard = "{{ results['guard'] }}"
result = "{{ result }}"
error = "{{ error }}"
seen = "{{ seen | default('no catch') }}"
"""


def test_scope_catch_gets_the_error_and_finally_always_runs(engine: Engine) -> None:
    path = engine.write(SCOPE)
    failing, passing = engine.run_many(Launch(path, cli=["fail=true"]),
                                       Launch(path, cli=["fail=false"]))

    failing_history, passing_history = (engine.history(failing["instance_id"]),
                                        engine.history(passing["instance_id"]))
    assert failing["status"] == "completed", failing
    assert failing["result"] == {
        "guard": "recovered",  # the catch block's value is the scope's result
        "result": "recovered",  # finally's log did not change it
        "error": "set before the scope",  # the error variable existed only in catch
        "seen": {"message": "it broke", "step": "boom", "kind": "thrown",
                 "step_path": "steps[1].do[0].then[0]"},
    }
    assert logged(failing_history) == ["caught: it broke", "cleanup"]
    caught = of_kind(failing_history, "scope_caught")
    assert [(e["step_id"], e["data"]["error"]["step"]) for e in caught] == [("guard", "boom")]

    assert passing["status"] == "completed", passing
    assert passing["result"] == {"guard": "worked", "result": "worked",
                                 "error": "set before the scope", "seen": "no catch"}
    assert logged(passing_history) == ["worked", "cleanup"]


SCOPE_NO_CATCH = """
[process]
name = "lang-scope-uncaught"

[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "work"
task = "log"
with = { message = "working" }
[[steps.do]]
id = "boom"
kind = "throw"
message = "no one catches this"
[[steps.finally]]
id = "cleanup"
task = "log"
with = { message = "cleanup" }

[[steps]]
id = "after"
task = "log"
with = { message = "after the scope" }
"""


SCOPE_CATCH_FAILS = """
[process]
name = "lang-scope-catch-fails"

[[steps]]
id = "guard"
kind = "scope"
error_as = "problem"
[[steps.do]]
id = "boom"
kind = "throw"
message = "first"
[[steps.catch]]
id = "handle"
task = "log"
with = { message = "handling {{ problem.message }}" }
[[steps.catch]]
id = "worse"
kind = "throw"
message = "catch broke while handling {{ problem.message }}"
[[steps.finally]]
id = "cleanup"
task = "log"
with = { message = "cleanup" }

[[steps]]
id = "after"
task = "log"
with = { message = "after the scope" }
"""


def test_scope_failures_propagate_after_finally_ran(engine: Engine) -> None:
    uncaught = engine.write(SCOPE_NO_CATCH, name="uncaught.toml")
    catch_fails = engine.write(SCOPE_CATCH_FAILS, name="catch-fails.toml")
    first, second = engine.run_many(Launch(uncaught), Launch(catch_fails))

    assert first["status"] == "failed"
    assert first["error"]["step_id"] == "boom"
    assert first["error"]["kind"] == "thrown"
    assert first["error"]["message"] == "no one catches this"
    steps, second_steps = (engine.history(first["instance_id"]),
                           engine.history(second["instance_id"]))
    assert [e["data"]["message"] for e in steps if e["kind"] == "log"] == ["working", "cleanup"]
    kinds = [e["kind"] for e in steps]
    assert kinds.index("scope_failed") < kinds.index("instance_failed")
    failed_events = [e for e in steps if e["kind"] == "scope_failed"]
    assert failed_events[0]["data"]["error"]["message"] == "no one catches this"

    assert second["status"] == "failed"
    assert second["error"]["step_id"] == "worse"
    assert second["error"]["message"] == "catch broke while handling first"
    assert logged(second_steps) == ["handling first", "cleanup"]


INTERMEDIATE = """
[process]
name = "lang-intermediate"
[process.params.order]
type = "str"
[process.params.pause]
type = "bool"

[[steps]]
id = "ack"
kind = "intermediate_return"
value = { accepted = true, order = "{{ order }}" }

[[steps]]
id = "work"
task = "sleep"
with = { seconds = "0.3s" }

[[steps]]
id = "maybe-wait"
kind = "if"
condition = "pause"
[[steps.then]]
id = "wait"
kind = "checkpoint"
correlation_id = "intermediate-{{ order }}"

[[steps]]
id = "done"
kind = "return"
value = { ack = "{{ results['ack'] }}", finished = true }
"""


def test_intermediate_return_answers_run_wait_while_the_instance_goes_on(
        engine: Engine) -> None:
    path = engine.write(INTERMEDIATE)
    paused_key, done_key = unique_key(), unique_key()
    paused, summary = engine.run_many(
        Launch(path, cli=[f"order={paused_key}", "pause=true"]),
        Launch(path, cli=[f"order={done_key}", "pause=false"]))

    # Both answered at their intermediate result, while running on.
    assert paused["status"] == "running"
    assert paused["intermediate"] == {"accepted": True, "order": paused_key}
    # The instance went on to pause at the checkpoint after the intermediate result.
    waiting = engine.wait(paused["instance_id"], "paused")
    assert (waiting["correlation_id"], waiting["checkpoint"]["step_id"]) == (
        f"intermediate-{paused_key}", "wait")

    assert summary["status"] == "running"
    assert summary["intermediate"] == {"accepted": True, "order": done_key}
    finished = engine.wait(summary["instance_id"], "completed")
    assert finished["result"] == {"ack": {"accepted": True, "order": done_key},
                                  "finished": True}
    recorded = [e for e in finished["history"] if e["kind"] == "intermediate_return"]
    assert [(e["step_id"], e["data"]) for e in recorded] == [
        ("ack", {"value": {"accepted": True, "order": done_key}})]

    resumed = engine.resume(f"intermediate-{paused_key}", {}, source="cli:resume.json")
    assert resumed["instance"]["status"] == "completed", resumed
    assert resumed["instance"]["result"]["ack"] == {"accepted": True, "order": paused_key}


CHILD = """
[process]
name = "lang-child"
[process.params.n]
type = "int"
[process.params.word]
type = "str"
default = "x"

[[steps]]
id = "note"
task = "log"
with = { message = "child got {{ n }}" }

[[steps]]
id = "give"
kind = "return"
value = { doubled = "{{ n * 2 }}", word = "{{ word | upper }}" }
"""


PARENT = """
[process]
name = "lang-parent"
[process.params.n]
type = "any"

[[steps]]
id = "kid"
kind = "call"
file = "child.toml"
params = { n = "{{ n }}", word = "hi" }

[[steps]]
id = "done"
kind = "return"
value = { child = "{{ results['kid'] }}", result = "{{ result }}" }
"""


def test_call_runs_a_child_instance_and_returns_its_result(engine: Engine) -> None:
    engine.write(CHILD, name="child.toml")
    path = engine.write(PARENT, name="parent.toml")
    summary, failed = engine.run_many(Launch(path, cli=["n=21"]), Launch(path, cli=["n=abc"]))
    assert summary["status"] == "completed", summary
    child_value = {"doubled": 42, "word": "HI"}
    assert summary["result"] == {"child": child_value, "result": child_value}

    # The child is an instance of its own, listed with its parent's id.
    parent_id = summary["instance_id"]
    children = engine.children(parent_id)
    assert len(children) == 1, children
    assert children[0]["process"] == "lang-child"
    child_id = children[0]["instance_id"]
    assert child_id != parent_id
    child = engine.show(child_id)
    assert child["parent_id"] == parent_id
    assert child["status"] == "completed"
    assert child["params"] == {"n": 21, "word": "hi"}
    assert child["result"] == child_value
    assert logged(child["history"]) == ["child got 21"]  # its own history

    # The params are checked against the child's declared types when the call runs.
    assert failed["status"] == "failed"
    assert failed["error"]["step_id"] == "kid"
    assert failed["error"]["kind"] == "call_params"
    assert "'n'" in failed["error"]["message"] and "int" in failed["error"]["message"]


FAILING_CHILD = """
[process]
name = "lang-failing-child"

[[steps]]
id = "child-boom"
kind = "throw"
message = "the child broke"
"""


CALLER = """
[process]
name = "lang-caller-{variant}"

[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "kid"
kind = "call"
file = "failing-child.toml"
{catch}
"""


CATCH_CHILD = """
[[steps.catch]]
id = "handled"
kind = "return"
value = { kind = "{{ error.kind }}", message = "{{ error.message }}", step = "{{ error.step }}" }
"""


def test_a_failing_child_fails_the_call_step_and_a_scope_catches_it(engine: Engine) -> None:
    engine.write(FAILING_CHILD, name="failing-child.toml")
    uncaught = engine.write(CALLER.format(variant="uncaught", catch=""), name="uncaught.toml")
    caught = engine.write(CALLER.format(variant="caught", catch=CATCH_CHILD),
                          name="caught.toml")
    failed, handled = engine.run_many(Launch(uncaught), Launch(caught))
    assert failed["status"] == "failed"
    error = failed["error"]
    assert error["kind"] == "child_failed"
    assert error["step_id"] == "kid"
    [child] = engine.children(failed["instance_id"])
    assert child["process"] == "lang-failing-child"
    assert child["status"] == "failed"
    assert child["error"]["step_id"] == "child-boom"
    # The message names the child instance and says what became of it.
    assert child["instance_id"] in error["message"]
    assert "the child broke" in error["message"]

    assert handled["status"] == "completed", handled
    assert handled["result"]["kind"] == "child_failed"
    assert handled["result"]["step"] == "kid"
    assert "the child broke" in handled["result"]["message"]


PAUSING_CHILD = """
[process]
name = "lang-pausing-child"
[process.params.key]
type = "str"
[process.params.n]
type = "int"

[[steps]]
id = "before"
task = "log"
with = { message = "child before the pause" }

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "child-{{ key }}"

[[steps]]
id = "give"
kind = "return"
value = { n = "{{ n }}", by = "{{ results['wait'].payload.by }}", version = "VERSION" }
"""


WAITING_PARENT = """
[process]
name = "lang-waiting-parent"
[process.params.key]
type = "str"

[[steps]]
id = "kid"
kind = "call"
file = "child.toml"
params = { key = "{{ key }}", n = 7 }

[[steps]]
id = "done"
kind = "return"
value = { child = "{{ results['kid'] }}" }
"""


def test_a_paused_child_keeps_its_parent_waiting_and_runs_its_pinned_text(
        engine: Engine) -> None:
    child_file = engine.write(PAUSING_CHILD.replace("VERSION", "old"), name="child.toml")
    path = engine.write(WAITING_PARENT, name="parent.toml")
    key = unique_key()
    parent_id = engine.start(path, cli=[f"key={key}"])

    # The parent pauses too, at the call, under the correlation ID call:<child id>; its
    # summary names the child to resume.
    waiting = engine.wait(parent_id, "paused")
    [child] = engine.children(parent_id)
    assert child["process"] == "lang-pausing-child"
    assert child["status"] == "paused"
    assert child["correlation_id"] == f"child-{key}"
    assert waiting["correlation_id"] == f"call:{child['instance_id']}"
    assert waiting["checkpoint"]["step_id"] == "kid"
    assert waiting["waiting_for"]["instance_id"] == child["instance_id"]
    assert waiting["waiting_for"]["resume_command"] == (
        f"procctl resume --correlation-id child-{key}")

    # Changing the child's file now does not change the running child.
    child_file.write_text(PAUSING_CHILD.replace("VERSION", "new"))
    resumed = engine.resume(f"child-{key}", {"by": "ada"}, source="cli:resume.json")
    assert resumed["instance"]["instance_id"] == child["instance_id"]
    assert resumed["instance"]["status"] == "completed", resumed

    parent = engine.wait(parent_id, "completed")
    shown_child = engine.show(child["instance_id"])
    assert parent["result"] == {"child": {"n": 7, "by": "ada", "version": "old"}}
    # The child went on after its checkpoint: the step before it did not run again.
    assert logged(shown_child["history"]) == ["child before the pause"]


FLAKY = """
import pathlib, sys
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
if n < int(sys.argv[2]):
    sys.exit("attempt %d failed" % n)
print("ok on attempt", n)
"""


def test_retry_policy_with_exponential_backoff(engine: Engine, tmp_path: Path) -> None:
    argv = [sys.executable, "-c", FLAKY, str(tmp_path / "count.txt"), "3"]
    summary = engine.run(f"""
[process]
name = "lang-retry"

[[steps]]
id = "flaky"
task = "exec"
retry = {{ attempts = 3, delay = "10ms", backoff = "exponential" }}
with = {{ argv = {toml(argv)} }}
""")
    assert summary["status"] == "completed", summary
    assert summary["result"]["stdout"] == "ok on attempt 3\n"
    assert (tmp_path / "count.txt").read_text() == "3"
    retries = of_kind(engine.history(summary["instance_id"]), "step_retry")
    assert [(e["step_id"], e["data"]["attempt"]) for e in retries] == [("flaky", 1),
                                                                     ("flaky", 2)]
    assert [e["data"]["delay"] for e in retries] == [0.01, 0.02]  # 10ms, then doubled
    assert [e["data"]["error"] for e in retries] == ["task_error", "task_error"]
    assert "attempt 1 failed" in retries[0]["data"]["message"]


def test_retry_on_names_the_errors_that_retry(engine: Engine, tmp_path: Path) -> None:
    argv = [sys.executable, "-c", FLAKY, str(tmp_path / "count.txt"), "3"]
    not_retried = engine.write(f"""
[process]
name = "lang-retry-on-timeout"

[[steps]]
id = "flaky"
task = "exec"
timeout = "30s"
retry = {{ attempts = 3, delay = "10ms", on = ["timeout"] }}
with = {{ argv = {toml(argv)} }}
""", name="not-retried.toml")
    timing_out = engine.write("""
[process]
name = "lang-timeout"

[[steps]]
id = "slow"
task = "sleep"
timeout = "200ms"
retry = { attempts = 2, delay = "10ms", on = ["timeout"] }
with = { seconds = "20s" }
""", name="timing-out.toml")
    first, second = engine.run_many(Launch(not_retried), Launch(timing_out))

    # A program that fails is not a timeout: one attempt, no retry.
    assert first["status"] == "failed"
    assert first["error"]["kind"] == "task_failed"
    assert "attempt 1 failed" in first["error"]["message"]
    assert (tmp_path / "count.txt").read_text() == "1"  # the program ran once
    assert "(attempt" not in first["error"]["message"]

    # A timeout is retried, and the last one fails the step with kind "timeout".
    assert second["status"] == "failed"
    assert second["error"]["kind"] == "timeout"
    assert second["error"]["step_id"] == "slow"
    assert "timed out" in second["error"]["message"]
    assert second["error"]["message"].endswith("(attempt 2 of 2)")
    retries = of_kind(engine.history(second["instance_id"]), "step_retry")
    assert [(e["data"]["attempt"], e["data"]["error"]) for e in retries] == [(1, "timeout")]


PLUGIN_MODULE = '''
import asyncio
import pathlib


def add(a, b):
    return a + b


async def whoami(greeting, context):
    await context.log("info", f"{greeting} from {context.step_id}")
    await asyncio.sleep(0)
    return {"instance_id": context.instance_id, "step_id": context.step_id,
            "attempt": context.attempt, "greeting": greeting}


def not_json():
    return {1, 2}


def explode(why):
    raise ValueError(why)


def flaky(counter, context):
    path = pathlib.Path(context.resolve(counter))
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    if n < 3:
        raise ConnectionError(f"refused on call {n}")
    return {"calls": n, "attempt": context.attempt}
'''


PLUGIN_PROCESS = """
[process]
name = "lang-plugins"
[process.params.which]
type = "str"

[[steps]]
id = "sum"
task = "lang_plugin_tasks:add"
with = { a = 2, b = 40 }

[[steps]]
id = "me"
task = "lang_plugin_tasks:whoami"
with = { greeting = "hi" }

[[steps]]
id = "pick"
kind = "switch"
[[steps.cases]]
when = "which == 'not-json'"
[[steps.cases.do]]
id = "odd-value"
task = "lang_plugin_tasks:not_json"
[[steps.cases]]
when = "which == 'raise'"
[[steps.cases.do]]
id = "raiser"
task = "lang_plugin_tasks:explode"
with = { why = "bad input" }
retry = { attempts = 3, delay = "10ms", on = ["ConnectionError"] }
[[steps.cases]]
when = "which == 'bad-args'"
[[steps.cases.do]]
id = "misnamed"
task = "lang_plugin_tasks:add"
with = { a = 1, c = 2 }
[[steps.cases]]
when = "which == 'flaky'"
[[steps.cases.do]]
id = "connect"
task = "lang_plugin_tasks:flaky"
with = { counter = "calls.txt" }
retry = { attempts = 3, delay = "10ms", on = ["ConnectionError"] }

[[steps]]
id = "done"
kind = "return"
value = { sum = "{{ results['sum'] }}", me = "{{ results['me'] }}", pick = "{{ result }}" }
"""


def test_module_plugins_sync_and_async_with_their_context(
        engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "lang_plugin_tasks.py").write_text(PLUGIN_MODULE)
    path = engine.write(PLUGIN_PROCESS)
    plain, flaky = engine.run_many(Launch(path, cli=["which=none"]),
                                   Launch(path, cli=["which=flaky"]))

    assert plain["status"] == "completed", plain
    instance_id = plain["instance_id"]
    assert plain["result"] == {
        "sum": 42,  # a sync function, with the `with` table as keyword arguments
        "me": {"instance_id": instance_id, "step_id": "me", "attempt": 1, "greeting": "hi"},
        "pick": None,  # no case of the switch held
    }
    plain_history, flaky_history = (engine.history(instance_id),
                                    engine.history(flaky["instance_id"]))
    assert logged(plain_history) == ["hi from me"]  # context.log

    # ConnectionError is named in retry.on: retried until the third call succeeds.
    assert flaky["status"] == "completed", flaky
    assert flaky["result"]["pick"] == {"calls": 3, "attempt": 3}
    assert (tmp_path / "calls.txt").read_text() == "3"  # context.resolve: beside the file
    retries = of_kind(flaky_history, "step_retry")
    assert [(e["data"]["attempt"], e["data"]["error"]) for e in retries] == [
        (1, "ConnectionError"), (2, "ConnectionError")]
    assert "raised ConnectionError: refused on call 1" in retries[0]["data"]["message"]


def test_plugin_failures_fail_the_step_with_a_clear_message(
        engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "lang_plugin_tasks.py").write_text(PLUGIN_MODULE)
    path = engine.write(PLUGIN_PROCESS.replace("lang-plugins", "lang-plugin-failures"))
    odd, raising, misnamed = engine.run_many(Launch(path, cli=["which=not-json"]),
                                             Launch(path, cli=["which=raise"]),
                                             Launch(path, cli=["which=bad-args"]))

    assert odd["status"] == "failed"
    assert odd["error"]["step_id"] == "odd-value"
    assert "returned a set, which cannot be stored as JSON" in odd["error"]["message"]

    assert raising["status"] == "failed"
    assert raising["error"]["step_id"] == "raiser"
    # A ValueError is not in retry.on = ["ConnectionError"]: one attempt only (after
    # more, the message would end with "(attempt N of 3)").
    assert raising["error"]["message"] == (
        "task 'lang_plugin_tasks:explode' raised ValueError: bad input")

    # Keyword arguments that do not fit the function's signature fail the step.
    assert misnamed["status"] == "failed"
    assert misnamed["error"]["step_id"] == "misnamed"
    assert misnamed["error"]["message"] == (
        "plugin 'lang_plugin_tasks:add': missing a required argument: 'b'")


def test_plugin_modules_of_the_same_name_in_two_directories_stay_apart(
        engine: Engine, tmp_path: Path) -> None:
    # Two definitions in two folders, each with its own helper module of the same
    # name, run by the same engine: each must get the module beside it.
    paths = []
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "lang_same_name.py").write_text(
            f"def which():\n    return {folder!r}\n")
        path = tmp_path / folder / "process.toml"
        path.write_text(f'[process]\nname = "lang-same-name-{folder}"\n\n'
                        '[[steps]]\nid = "which"\ntask = "lang_same_name:which"\n')
        paths.append(path)
    first = engine.run(paths[0])
    second = engine.run(paths[1])
    assert first["result"] == "first"
    assert second["result"] == "second", second
