"""Validation findings: each error and warning of the spec, at its line, step and id, with a
message that says what is wrong and a hint that says what to do.

Every finding is checked through `parse_definition` (or `load_definition` when files next
to the definition matter: plugins, calls), as `procctl validate` and `procctl run` use it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from procctl.agent.definition import load_definition, parse_definition
from procctl.agent.errors import DefinitionError, Problem

HEAD = '[process]\nname = "v"\n'
PARAMS = HEAD + '[process.params.amount]\ntype = "int"\ndefault = 5\n'


def problems(source: str) -> list[Problem]:
    """The findings of a definition that must not load."""
    with pytest.raises(DefinitionError) as info:
        parse_definition(source, "p.toml")
    return info.value.problems


def warnings(source: str) -> list[Problem]:
    """The findings of a definition that must load (warnings only)."""
    return list(parse_definition(source, "p.toml").warnings)


def line(source: str, text: str) -> int:
    """The 1-based line of the only line of `source` that contains `text`."""
    found = [n for n, content in enumerate(source.splitlines(), 1) if text in content]
    assert len(found) == 1, f"{text!r} is on lines {found}"
    return found[0]


def exact_lines(source: str, text: str) -> list[int]:
    """The 1-based lines of `source` that are exactly `text`."""
    return [n for n, content in enumerate(source.splitlines(), 1) if content == text]


def only(found: list[Problem], needle: str) -> Problem:
    """The only finding whose message contains `needle`."""
    matching = [p for p in found if needle in p.message]
    assert len(matching) == 1, [p.message for p in found]
    return matching[0]


def where(problem: Problem) -> tuple[str, int | None, str | None, str | None]:
    return problem.severity, problem.line, problem.step_path, problem.step_id


# -- unknown kinds and fields ----------------------------------------------------------

KIND_PLACES = {
    "top level": ("""
[[steps]]
id = "greet"
kind = "tsk"
task = "log"
""", "steps[0]"),
    "switch case": ("""
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
when = "true"
[[steps.cases.do]]
id = "greet"
kind = "tsk"
task = "log"
""", "steps[0].cases[0].do[0]"),
    "while body": ("""
[[steps]]
id = "poll"
kind = "while"
condition = "true"
max_iterations = 2
[[steps.body]]
id = "greet"
kind = "tsk"
task = "log"
""", "steps[0].body[0]"),
    "scope catch": ("""
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "work"
kind = "throw"
message = "no"
[[steps.catch]]
id = "greet"
kind = "tsk"
task = "log"
""", "steps[0].catch[0]"),
}


@pytest.mark.parametrize("place", KIND_PLACES)
def test_unknown_step_kind_suggests_the_close_one(place: str) -> None:
    steps, path = KIND_PLACES[place]
    source = HEAD + steps
    problem = only(problems(source), "unknown step kind")
    assert where(problem) == ("error", line(source, 'kind = "tsk"'), path, "greet")
    assert problem.message == "unknown step kind 'tsk'"
    assert problem.hint == "did you mean 'task'?"


FIELD_CASES = {
    "task step": ("""
[[steps]]
id = "greet"
task = "log"
wiht = { message = "hi" }
""", "wiht =", "steps[0]", "greet", "unknown field 'wiht' for a task step",
        "did you mean 'with'?"),
    "switch case": ("""
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
whn = "true"
[[steps.cases.do]]
id = "greet"
task = "log"
with = { message = "hi" }
""", "whn =", "steps[0]", "route", "unknown field 'whn' in cases[0]",
        "did you mean 'when'?"),
    "retry table": ("""
[[steps]]
id = "fetch"
task = "log"
with = { message = "hi" }
retry = { atempts = 3 }
""", "retry =", "steps[0]", "fetch", "unknown field 'atempts' in retry",
        "did you mean 'attempts'?"),
    "while step": ("""
[[steps]]
id = "poll"
kind = "while"
condition = "true"
max_iterations = 3
max_iteration = 4
[[steps.body]]
id = "greet"
task = "log"
with = { message = "hi" }
""", "max_iteration = 4", "steps[0]", "poll", "unknown field 'max_iteration' for a while step",
        "did you mean 'max_iterations'?"),
    "scope block": ("""
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "work"
task = "log"
with = { message = "hi" }
[[steps.cath]]
id = "greet"
task = "log"
with = { message = "hi" }
""", "[[steps.cath]]", "steps[0]", "guard", "unknown field 'cath' for a scope step",
        "did you mean 'catch'?"),
    "when in a parallel branch": ("""
[[steps]]
id = "fan"
kind = "parallel"
[[steps.branches]]
when = "true"
[[steps.branches.do]]
id = "greet"
task = "log"
with = { message = "hi" }
""", 'when = "true"', "steps[0]", "fan", "unknown field 'when' in branches[0]",
        "branches take do, name"),
}


@pytest.mark.parametrize("case", FIELD_CASES)
def test_unknown_field_points_at_it_and_suggests_the_close_one(case: str) -> None:
    steps, at, path, step_id, message, hint = FIELD_CASES[case]
    source = HEAD + steps
    problem = only(problems(source), "unknown field")
    assert problem.message == message
    assert problem.hint == hint
    assert where(problem) == ("error", line(source, at), path, step_id)


# -- ids and results -------------------------------------------------------------------

DUPLICATES = {
    "same block": ("""
[[steps]]
id = "same"
task = "log"
with = { message = "1" }
[[steps]]
id = "same"
task = "log"
with = { message = "2" }
""", "steps[1]"),
    "switch case and parallel branch": ("""
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
when = "true"
[[steps.cases.do]]
id = "same"
kind = "set"
values = { a = 1 }
[[steps]]
id = "fan"
kind = "parallel"
[[steps.branches]]
[[steps.branches.do]]
id = "same"
task = "log"
with = { message = "2" }
""", "steps[1].branches[0].do[0]"),
    "while body and scope finally": ("""
[[steps]]
id = "poll"
kind = "while"
condition = "false"
max_iterations = 2
[[steps.body]]
id = "same"
task = "log"
with = { message = "1" }
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "work"
task = "log"
with = { message = "2" }
[[steps.finally]]
id = "same"
task = "log"
with = { message = "3" }
""", "steps[1].finally[0]"),
    "inclusive branch and scope catch": ("""
[[steps]]
id = "pick"
kind = "inclusive"
[[steps.branches]]
when = "true"
[[steps.branches.do]]
id = "same"
task = "log"
with = { message = "1" }
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "work"
kind = "throw"
message = "no"
[[steps.catch]]
id = "same"
task = "log"
with = { message = "2" }
""", "steps[1].catch[0]"),
}


@pytest.mark.parametrize("case", DUPLICATES)
def test_duplicate_id_names_the_first_use(case: str) -> None:
    steps, path = DUPLICATES[case]
    source = HEAD + steps
    lines = exact_lines(source, 'id = "same"')
    [problem] = problems(source)
    assert problem.message == f"duplicate step id 'same' (first used at line {lines[0]})"
    assert where(problem) == ("error", lines[1], path, "same")
    assert problem.hint == "give every step its own id"


RESULTS = HEAD + """
[[steps]]
id = "fetch"
task = "log"
with = { message = "a" }
[[steps]]
id = "poll"
kind = "while"
condition = "false"
max_iterations = 2
[[steps.body]]
id = "use"
task = "log"
with = { message = "{{ results['fecth'] }} {{ results['later'] }}" }
[[steps]]
id = "later"
task = "log"
with = { message = "b" }
"""


def test_results_of_an_unknown_step_suggest_the_close_id() -> None:
    problem = only(problems(RESULTS), "fecth")
    assert problem.message == "reads results['fecth'], but no step has that id"
    assert where(problem) == ("error", line(RESULTS, 'id = "use"'), "steps[1].body[0]", "use")
    assert problem.hint == "did you mean 'fetch'?"


def test_results_of_a_later_step_are_refused() -> None:
    problem = only(problems(RESULTS), "'later'")
    assert problem.message == "reads results['later'], but that step runs later"
    assert where(problem) == ("error", line(RESULTS, 'id = "use"'), "steps[1].body[0]", "use")
    assert problem.hint is not None and "before it" in problem.hint


def test_results_of_steps_in_parallel_branches_are_readable_after_the_join() -> None:
    assert warnings(HEAD + """
[[steps]]
id = "fan"
kind = "parallel"
[[steps.branches]]
[[steps.branches.do]]
id = "left"
task = "log"
with = { message = "l" }
[[steps]]
id = "after"
kind = "return"
value = "{{ results['left'] }}"
""") == []


# -- variables: never set (error), set on some paths only (warning) ---------------------

def test_a_variable_no_step_sets_is_an_error_with_a_did_you_mean() -> None:
    source = HEAD + """
[[steps]]
id = "init"
kind = "set"
values = { total = 1 }
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "say"
task = "log"
with = { message = "{{ totl }}" }
"""
    [problem] = problems(source)
    assert problem.message == "reads variable 'totl', which no param or earlier step sets"
    assert where(problem) == ("error", line(source, 'id = "say"'), "steps[1].do[0]", "say")
    assert problem.hint == "did you mean 'total'?"


SOME_PATHS = {
    "if then only": ("""
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
""", "steps[1]"),
    "switch without default": ("""
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
when = "amount > 3"
[[steps.cases.do]]
id = "big"
kind = "set"
values = { x = 1 }
[[steps.cases]]
when = "amount > 1"
[[steps.cases.do]]
id = "mid"
kind = "set"
values = { x = 2 }
[[steps]]
id = "use"
task = "log"
with = { message = "{{ x }}" }
""", "steps[1]"),
    "inclusive branch": ("""
[[steps]]
id = "pick"
kind = "inclusive"
[[steps.branches]]
when = "amount > 3"
[[steps.branches.do]]
id = "mark"
kind = "set"
values = { x = 1 }
[[steps.branches]]
when = "amount > 1"
[[steps.branches.do]]
id = "mark2"
kind = "set"
values = { x = 2 }
[[steps]]
id = "use"
task = "log"
with = { message = "{{ x }}" }
""", "steps[1]"),
    "foreach body": ("""
[[steps]]
id = "loop"
kind = "foreach"
items = "range(amount)"
[[steps.body]]
id = "mark"
kind = "set"
values = { x = "{{ item }}" }
[[steps]]
id = "use"
task = "log"
with = { message = "{{ x }}" }
""", "steps[1]"),
    "while body": ("""
[[steps]]
id = "poll"
kind = "while"
condition = "amount > 10"
max_iterations = 3
[[steps.body]]
id = "mark"
kind = "set"
values = { x = 1 }
[[steps]]
id = "use"
task = "log"
with = { message = "{{ x }}" }
""", "steps[1]"),
    "scope catch only": ("""
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
""", "steps[1]"),
    "scope do, when catch may end it": ("""
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "mark"
kind = "set"
values = { x = 1 }
[[steps.catch]]
id = "log-it"
task = "log"
with = { message = "{{ error.message }}" }
[[steps]]
id = "use"
task = "log"
with = { message = "{{ x }}" }
""", "steps[1]"),
    "if then only, read inside a later block": ("""
[[steps]]
id = "pick"
kind = "if"
condition = "amount > 3"
[[steps.then]]
id = "mark"
kind = "set"
values = { x = 1 }
[[steps]]
id = "again"
kind = "while"
condition = "false"
max_iterations = 1
[[steps.body]]
id = "other"
task = "log"
with = { message = "before" }
[[steps.body]]
id = "use"
task = "log"
with = { message = "{{ x }}" }
""", "steps[1].body[1]"),
}


@pytest.mark.parametrize("case", SOME_PATHS)
def test_a_variable_set_on_some_paths_only_is_a_warning(case: str) -> None:
    steps, path = SOME_PATHS[case]
    source = PARAMS + steps
    [problem] = warnings(source)
    assert problem.message == ("may read variable 'x' before it is set: only some paths "
                               "to this step set it")
    assert where(problem) == ("warning", line(source, 'id = "use"'), path, "use")
    assert problem.hint is not None and "every path" in problem.hint


EVERY_PATH = {
    "every switch case and default": """
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
when = "amount > 3"
[[steps.cases.do]]
id = "big"
kind = "set"
values = { x = 1 }
[[steps.cases]]
when = "amount > 1"
[[steps.cases.do]]
id = "mid"
kind = "set"
values = { x = 2 }
[[steps.default]]
id = "small"
kind = "set"
values = { x = 3 }
""",
    "if and else": """
[[steps]]
id = "pick"
kind = "if"
condition = "amount > 3"
[[steps.then]]
id = "mark"
kind = "set"
values = { x = 1 }
[[steps.else]]
id = "mark2"
kind = "set"
values = { x = 2 }
""",
    "if without else, the then branch returns": """
[[steps]]
id = "pick"
kind = "if"
condition = "amount > 3"
[[steps.then]]
id = "early"
kind = "return"
value = "big"
[[steps.else]]
id = "mark"
kind = "set"
values = { x = 1 }
""",
    "the branch that does not set it throws": """
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
when = "amount > 3"
[[steps.cases.do]]
id = "big"
kind = "set"
values = { x = 1 }
[[steps.default]]
id = "refuse"
kind = "throw"
message = "too small"
""",
    "the branch that does not set it returns after other steps": """
[[steps]]
id = "pick"
kind = "if"
condition = "amount > 3"
[[steps.then]]
id = "mark"
kind = "set"
values = { x = 1 }
[[steps.else]]
id = "note"
task = "log"
with = { message = "small" }
[[steps.else]]
id = "early"
kind = "return"
value = "small"
""",
    "scope do and catch both set it": """
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "mark"
kind = "set"
values = { x = 1 }
[[steps.catch]]
id = "mark2"
kind = "set"
values = { x = 2 }
""",
    "scope finally sets it": """
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "work"
task = "log"
with = { message = "hi" }
[[steps.finally]]
id = "mark"
kind = "set"
values = { x = 1 }
""",
}


@pytest.mark.parametrize("case", EVERY_PATH)
def test_no_warning_when_every_path_that_goes_on_sets_the_variable(case: str) -> None:
    source = PARAMS + EVERY_PATH[case] + """
[[steps]]
id = "use"
task = "log"
with = { message = "{{ x }}" }
"""
    assert warnings(source) == []


def test_variables_set_in_a_parallel_branch_are_an_error_after_the_join() -> None:
    source = HEAD + """
[[steps]]
id = "base"
kind = "set"
values = { before = 1 }
[[steps]]
id = "fan"
kind = "parallel"
[[steps.branches]]
[[steps.branches.do]]
id = "mark"
kind = "set"
values = { inside = "{{ before }}" }
[[steps.branches.do]]
id = "see"
task = "log"
with = { message = "{{ inside }}" }
[[steps.branches]]
[[steps.branches.do]]
id = "mark2"
kind = "set"
values = { inside = 2 }
[[steps]]
id = "after"
task = "log"
with = { message = "{{ inside }}" }
"""
    [problem] = problems(source)  # the branch itself reads `inside` and `before` freely
    assert problem.message == ("reads variable 'inside', which is set only inside a branch "
                               "of parallel step 'fan'; a branch's variables stay in it")
    assert where(problem) == ("error", line(source, 'id = "after"'), "steps[2]", "after")
    assert problem.hint == ("return the value from the branch and read "
                            "results['fan']['<branch name>']")


# -- expressions -----------------------------------------------------------------------

EXPRESSIONS = {
    "when of a switch case": ("""
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
when = "amount >"
[[steps.cases.do]]
id = "big"
task = "log"
with = { message = "big" }
""", 'when = "amount >"', "steps[0]", "route", "when: syntax error in 'amount >'"),
    "when of an inclusive branch": ("""
[[steps]]
id = "pick"
kind = "inclusive"
[[steps.branches]]
when = "amount >= >"
[[steps.branches.do]]
id = "big"
task = "log"
with = { message = "big" }
""", 'when = "amount >= >"', "steps[0]", "pick", "when: syntax error in 'amount >= >'"),
    "condition of a while": ("""
[[steps]]
id = "poll"
kind = "while"
condition = "amount <"
max_iterations = 3
[[steps.body]]
id = "say"
task = "log"
with = { message = "x" }
""", 'condition = "amount <"', "steps[0]", "poll", "condition: syntax error in 'amount <'"),
    "with of a task in a scope": ("""
[[steps]]
id = "guard"
kind = "scope"
[[steps.do]]
id = "say"
task = "log"
with = { message = "{{ amount + }}" }
""", "with =", "steps[0].do[0]", "say", "with: syntax error in '{{ amount + }}'"),
}


@pytest.mark.parametrize("case", EXPRESSIONS)
def test_expression_syntax_errors_point_at_the_expression(case: str) -> None:
    steps, at, path, step_id, message = EXPRESSIONS[case]
    source = PARAMS + steps
    problem = only(problems(source), "syntax error")
    assert problem.message.startswith(message)
    assert where(problem) == ("error", line(source, at), path, step_id)
    assert problem.hint is not None and "expression" in problem.hint


# -- checkpoints and scheduled resumes -------------------------------------------------

def test_a_checkpoint_in_a_parallel_branch_is_refused() -> None:
    source = HEAD + """
[[steps]]
id = "fan"
kind = "parallel"
[[steps.branches]]
name = "left"
[[steps.branches.do]]
id = "say"
task = "log"
with = { message = "l" }
[[steps.branches]]
name = "right"
[[steps.branches.do]]
id = "wait-here"
kind = "checkpoint"
"""
    [problem] = problems(source)
    assert problem.message.startswith(
        "a checkpoint step cannot stand in a branch of parallel step 'fan'")
    assert where(problem) == ("error", line(source, 'id = "wait-here"'),
                              "steps[0].branches[1].do[0]", "wait-here")
    assert problem.hint is not None and "before or after the parallel step" in problem.hint


def test_a_checkpoint_deep_in_a_parallel_branch_inside_an_if_is_refused() -> None:
    source = PARAMS + """
[[steps]]
id = "pick"
kind = "if"
condition = "amount > 1"
[[steps.then]]
id = "inner-fan"
kind = "parallel"
[[steps.then.branches]]
[[steps.then.branches.do]]
id = "loop"
kind = "foreach"
items = "[1, 2]"
[[steps.then.branches.do.body]]
id = "wait-here"
kind = "checkpoint"
continue = true
"""
    [problem] = problems(source)
    assert problem.message.startswith(
        "a checkpoint step cannot stand in a branch of parallel step 'inner-fan'")
    assert where(problem) == ("error", line(source, 'id = "wait-here"'),
                              "steps[0].then[0].branches[0].do[0].body[0]", "wait-here")


def test_a_scheduled_resume_in_a_parallel_branch_is_refused() -> None:
    source = HEAD + """
[[steps]]
id = "save"
kind = "checkpoint"
continue = true
[[steps]]
id = "fan"
kind = "parallel"
[[steps.branches]]
[[steps.branches.do]]
id = "later"
kind = "scheduled_resume"
after = "1m"
"""
    [problem] = problems(source)
    assert problem.message.startswith(
        "a scheduled_resume step cannot stand in a branch of parallel step 'fan'")
    assert where(problem) == ("error", line(source, 'id = "later"'),
                              "steps[1].branches[0].do[0]", "later")


def test_a_checkpoint_in_a_commit_block_is_refused() -> None:
    source = HEAD + """
[[steps]]
id = "save"
kind = "checkpoint"
[[steps.commit]]
id = "again"
kind = "checkpoint"
"""
    [problem] = problems(source)
    assert problem.message == "a checkpoint step cannot stand in a checkpoint's commit block"
    assert where(problem) == ("error", line(source, 'id = "again"'), "steps[0].commit[0]",
                              "again")
    assert problem.hint == "move it after the checkpoint"


def test_a_scheduled_resume_without_any_checkpoint_before_it_is_an_error() -> None:
    source = HEAD + """
[[steps]]
id = "later"
kind = "scheduled_resume"
after = "5s"
[[steps]]
id = "save"
kind = "checkpoint"
continue = true
"""
    [problem] = problems(source)
    assert problem.message == "scheduled_resume has no checkpoint before it to resume from"
    assert where(problem) == ("error", line(source, 'id = "later"'), "steps[0]", "later")
    assert problem.hint is not None and "add a checkpoint step" in problem.hint


def test_a_scheduled_resume_after_a_checkpoint_on_one_branch_only_is_a_warning() -> None:
    source = PARAMS + """
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
"""
    [problem] = warnings(source)
    assert problem.message == ("scheduled_resume may run before any checkpoint: only some "
                               "paths to it pass one")
    assert where(problem) == ("warning", line(source, 'id = "later"'), "steps[1]", "later")
    assert problem.hint == "put a checkpoint on every path to it"


def test_a_scheduled_resume_after_a_checkpoint_on_every_branch_is_fine() -> None:
    assert warnings(PARAMS + """
[[steps]]
id = "pick"
kind = "if"
condition = "amount > 1"
[[steps.then]]
id = "save"
kind = "checkpoint"
continue = true
[[steps.else]]
id = "save2"
kind = "checkpoint"
continue = true
[[steps]]
id = "later"
kind = "scheduled_resume"
after = "5s"
""") == []


# -- steps that can never run ----------------------------------------------------------

UNREACHABLE = {
    "after a return": ("""
[[steps]]
id = "done"
kind = "return"
value = 1
""", "return step 'done'", "steps[1]"),
    "after a throw": ("""
[[steps]]
id = "done"
kind = "throw"
message = "stop"
""", "throw step 'done'", "steps[1]"),
    "after an if whose branches both return": ("""
[[steps]]
id = "done"
kind = "if"
condition = "amount > 1"
[[steps.then]]
id = "r1"
kind = "return"
value = 1
[[steps.else]]
id = "r2"
kind = "throw"
message = "small"
""", "if step 'done'", "steps[1]"),
    "after a switch whose cases and default all end": ("""
[[steps]]
id = "done"
kind = "switch"
[[steps.cases]]
when = "amount > 1"
[[steps.cases.do]]
id = "r1"
kind = "return"
value = 1
[[steps.default]]
id = "r2"
kind = "return"
value = 2
""", "switch step 'done'", "steps[1]"),
}


@pytest.mark.parametrize("case", UNREACHABLE)
def test_steps_after_a_step_that_always_ends_the_block_are_reported_once(case: str) -> None:
    steps, ender, path = UNREACHABLE[case]
    source = PARAMS + steps + """
[[steps]]
id = "dead"
task = "log"
with = { message = "never" }
[[steps]]
id = "dead2"
task = "log"
with = { message = "never either" }
"""
    [problem] = warnings(source)  # only the first dead step
    assert problem.message == f"can never run: {ender} before it always ends this block"
    assert where(problem) == ("warning", line(source, 'id = "dead"'), path, "dead")
    assert problem.hint == "remove it or move it before 'done'"


def test_a_return_inside_a_loop_body_makes_the_rest_of_the_body_dead() -> None:
    source = HEAD + """
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
id = "after"
task = "log"
with = { message = "runs" }
"""
    [problem] = warnings(source)
    assert problem.message.startswith("can never run: return step 'done'")
    assert where(problem) == ("warning", line(source, 'id = "dead"'), "steps[0].body[1]", "dead")


def test_a_switch_without_default_whose_cases_return_does_not_end_the_block() -> None:
    assert warnings(PARAMS + """
[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
when = "amount > 1"
[[steps.cases.do]]
id = "r1"
kind = "return"
value = 1
[[steps]]
id = "after"
task = "log"
with = { message = "runs when no case holds" }
""") == []


# -- durations and retries -------------------------------------------------------------

DURATIONS = {
    "checkpoint ttl": ("""
[[steps]]
id = "wait"
kind = "checkpoint"
ttl = "7 parsecs"
""", 'ttl = "7 parsecs"', "ttl: '7 parsecs' is not a duration"),
    "task timeout": ("""
[[steps]]
id = "wait"
task = "sleep"
with = { seconds = 1 }
timeout = "fast"
""", 'timeout = "fast"', "timeout: 'fast' is not a duration"),
    "retry delay": ("""
[[steps]]
id = "wait"
task = "sleep"
with = { seconds = 1 }
retry = { attempts = 2, delay = "soon" }
""", "retry =", "'soon' is not a duration"),
    "retry max_delay": ("""
[[steps]]
id = "wait"
task = "sleep"
with = { seconds = 1 }
retry = { attempts = 2, max_delay = "never" }
""", "retry =", "'never' is not a duration"),
    "retry_delay": ("""
[[steps]]
id = "wait"
task = "sleep"
with = { seconds = 1 }
retries = 2
retry_delay = "a bit"
""", 'retry_delay = "a bit"', "retry_delay: 'a bit' is not a duration"),
    "checkpoint resume_after": ("""
[[steps]]
id = "wait"
kind = "checkpoint"
resume_after = "tomorrow"
""", 'resume_after = "tomorrow"', "resume_after: 'tomorrow' is not a duration"),
    "scheduled_resume after": ("""
[[steps]]
id = "save"
kind = "checkpoint"
continue = true
[[steps]]
id = "wait"
kind = "scheduled_resume"
after = "later"
""", 'after = "later"', "after: 'later' is not a duration"),
}


@pytest.mark.parametrize("case", DURATIONS)
def test_a_duration_that_does_not_parse_is_an_error_at_its_field(case: str) -> None:
    steps, at, message = DURATIONS[case]
    source = HEAD + steps
    problem = only(problems(source), "is not a duration")
    assert message in problem.message
    assert '"30s"' in problem.message  # says what a duration looks like
    severity, at_line, _, step_id = where(problem)
    assert (severity, at_line, step_id) == ("error", line(source, at), "wait")


RETRIES = {
    "attempts 0": ('retry = { attempts = 0 }', "retry.attempts must be a whole number, 1 or more",
                   None),
    "attempts text": ('retry = { attempts = "3" }', "retry.attempts must be a whole number",
                      None),
    "backoff misspelt": ('retry = { backoff = "exponentail" }',
                         "retry.backoff 'exponentail' is not fixed or exponential",
                         "did you mean 'exponential'?"),
    "factor below 1": ('retry = { factor = 0.5 }', "retry.factor must be a number, 1 or more",
                       None),
    "jitter above 1": ('retry = { jitter = 2 }',
                       "retry.jitter must be true, false or a fraction from 0 to 1", None),
    "on not a list": ('retry = { on = 5 }', "retry.on must be a list of error kinds",
                      "timeout"),
    "retry not a table": ('retry = 3', "retry must be a table", "attempts"),
    "retry and retries": ('retry = { attempts = 2 }\nretries = 3',
                          "give retry = { ... } or retries/retry_delay, not both", None),
}


@pytest.mark.parametrize("case", RETRIES)
def test_bad_retry_fields_are_errors_at_the_retry_line(case: str) -> None:
    fields, message, hint = RETRIES[case]
    source = HEAD + f"""
[[steps]]
id = "fetch"
task = "log"
with = {{ message = "hi" }}
{fields}
"""
    [problem] = problems(source)
    assert problem.message.startswith(message)
    assert where(problem) == ("error", line(source, "retry ="), "steps[0]", "fetch")
    if hint is not None:
        assert problem.hint is not None and hint in problem.hint


def test_retries_below_zero_are_an_error() -> None:
    source = HEAD + """
[[steps]]
id = "fetch"
task = "log"
with = { message = "hi" }
retries = -1
"""
    [problem] = problems(source)
    assert problem.message == "retries must be a whole number, 0 or more"
    assert where(problem) == ("error", line(source, "retries = -1"), "steps[0]", "fetch")


# -- tasks and plugins -----------------------------------------------------------------

@pytest.mark.parametrize(("task", "hint"), [
    ("lgo", "did you mean 'log'?"),
    ("file.raed", "did you mean 'file.read'?"),
    ("htttp", "did you mean 'http'?"),
])
def test_an_unknown_task_suggests_a_builtin(task: str, hint: str) -> None:
    source = HEAD + f"""
[[steps]]
id = "work"
task = "{task}"
"""
    [problem] = problems(source)
    assert problem.message == f"unknown task {task!r}"
    assert where(problem) == ("error", line(source, "task ="), "steps[0]", "work")
    assert problem.hint == hint


def test_an_unknown_task_with_nothing_close_lists_the_builtins() -> None:
    [problem] = problems(HEAD + '[[steps]]\nid = "work"\ntask = "zzzqqq"\n')
    assert problem.message == "unknown task 'zzzqqq'"
    assert problem.hint is not None
    assert "log" in problem.hint and "module:function" in problem.hint


PLUGIN_STEP = HEAD + """
[[steps]]
id = "work"
task = "mymod_validation_probe:func"
with = { n = 1 }
"""


def test_a_plugin_module_that_is_not_beside_the_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PLUGIN_STEP, encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_definition(path)
    [problem] = info.value.problems
    assert problem.message == ("task 'mymod_validation_probe:func': no module "
                               "'mymod_validation_probe' beside the definition or on the "
                               "agent's Python path")
    assert problem.file == str(path)
    assert where(problem) == ("error", line(PLUGIN_STEP, "task ="), "steps[0]", "work")
    assert problem.hint is not None and "module:function" in problem.hint
    # Put the module beside the file and the same definition loads.
    (tmp_path / "mymod_validation_probe.py").write_text(
        "def func(n):\n    return n\n", encoding="utf-8")
    assert load_definition(path).warnings == ()


def test_a_plugin_reference_that_is_not_module_colon_function_is_an_error() -> None:
    source = HEAD + '[[steps]]\nid = "work"\ntask = "my-mod:func"\n'
    [problem] = problems(source)
    assert problem.message == "task 'my-mod:func' is not of the form \"module:function\""
    assert where(problem) == ("error", line(source, "task ="), "steps[0]", "work")


# -- calls -----------------------------------------------------------------------------

CHILD = HEAD.replace('"v"', '"child"') + """
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


def call_step(file: str, params: str = "{ n = 1 }") -> str:
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


def load_problems(path: Path) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        load_definition(path)
    return info.value.problems


def test_a_valid_call_loads(tmp_path: Path) -> None:
    (tmp_path / "child.toml").write_text(CHILD, encoding="utf-8")
    parent = tmp_path / "parent.toml"
    parent.write_text(call_step("child.toml"), encoding="utf-8")
    assert load_definition(parent).warnings == ()


def test_a_call_to_a_missing_file_is_an_error(tmp_path: Path) -> None:
    parent = tmp_path / "parent.toml"
    source = call_step("missing.toml")
    parent.write_text(source, encoding="utf-8")
    [problem] = load_problems(parent)
    assert problem.message == f"call: no such file: {tmp_path.resolve() / 'missing.toml'}"
    assert where(problem) == ("error", line(source, "file ="), "steps[1]", "kid")
    assert problem.hint == "file is relative to this definition's directory"


def test_a_call_cycle_is_refused(tmp_path: Path) -> None:
    a_source = call_step("b.toml", "{}")
    (tmp_path / "a.toml").write_text(a_source, encoding="utf-8")
    (tmp_path / "b.toml").write_text(call_step("a.toml", "{}"), encoding="utf-8")
    [problem] = load_problems(tmp_path / "a.toml")
    assert "call cycle: a.toml -> b.toml -> a.toml" in problem.message
    assert problem.message.startswith("call: b.toml is not valid")
    assert where(problem) == ("error", line(a_source, "file ="), "steps[1]", "kid")
    assert problem.hint == "run: procctl validate b.toml"


def test_a_call_of_its_own_file_is_a_cycle(tmp_path: Path) -> None:
    source = call_step("self.toml", "{}")
    (tmp_path / "self.toml").write_text(source, encoding="utf-8")
    [problem] = load_problems(tmp_path / "self.toml")
    assert problem.message == "call: call cycle: self.toml -> self.toml"
    assert where(problem) == ("error", line(source, "file ="), "steps[1]", "kid")


def test_a_call_with_an_unknown_param_suggests_the_close_one(tmp_path: Path) -> None:
    (tmp_path / "child.toml").write_text(CHILD, encoding="utf-8")
    source = call_step("child.toml", "{ n = 1, lable = 'y' }")
    (tmp_path / "parent.toml").write_text(source, encoding="utf-8")
    [problem] = load_problems(tmp_path / "parent.toml")
    assert problem.message == "call: child.toml has no param 'lable'"
    assert where(problem) == ("error", line(source, "params ="), "steps[1]", "kid")
    assert problem.hint == "did you mean 'label'?"


def test_a_call_missing_a_required_param_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "child.toml").write_text(CHILD, encoding="utf-8")
    source = call_step("child.toml", "{ label = 'y' }")  # n is required, label has a default
    (tmp_path / "parent.toml").write_text(source, encoding="utf-8")
    [problem] = load_problems(tmp_path / "parent.toml")
    assert problem.message == "call: child.toml needs param 'n'"
    assert where(problem) == ("error", line(source, "params ="), "steps[1]", "kid")
    assert problem.hint is not None and "n =" in problem.hint


def test_a_call_of_an_invalid_child_names_the_childs_problem(tmp_path: Path) -> None:
    child = HEAD + '\n[[steps]]\nid = "inner"\nkind = "tsk"\n'
    (tmp_path / "child.toml").write_text(child, encoding="utf-8")
    source = call_step("child.toml", "{}")
    (tmp_path / "parent.toml").write_text(source, encoding="utf-8")
    [problem] = load_problems(tmp_path / "parent.toml")
    assert problem.message.startswith("call: child.toml is not valid: ")
    assert (f"child.toml:{line(child, 'kind =')}: steps[0] (id 'inner'): "
            "unknown step kind 'tsk'") in problem.message
    assert where(problem) == ("error", line(source, "file ="), "steps[1]", "kid")
    assert problem.hint == "run: procctl validate child.toml"


# -- while -----------------------------------------------------------------------------

def test_a_while_without_max_iterations_is_an_error() -> None:
    source = HEAD + """
[[steps]]
id = "poll"
kind = "while"
condition = "true"
[[steps.body]]
id = "say"
task = "log"
with = { message = "x" }
"""
    [problem] = problems(source)
    assert problem.message == "while step needs 'max_iterations'"
    assert where(problem) == ("error", line(source, 'id = "poll"'), "steps[0]", "poll")
    assert problem.hint


@pytest.mark.parametrize("value", ["0", "-2", "2.5", '"ten"', "true"])
def test_a_while_max_iterations_below_one_is_an_error(value: str) -> None:
    source = HEAD + f"""
[[steps]]
id = "poll"
kind = "while"
condition = "true"
max_iterations = {value}
[[steps.body]]
id = "say"
task = "log"
with = {{ message = "x" }}
"""
    [problem] = problems(source)
    assert problem.message == "max_iterations must be a whole number, 1 or more"
    assert where(problem) == ("error", line(source, "max_iterations ="), "steps[0]", "poll")
    assert problem.hint == "it bounds the loop: max_iterations = 100"


# -- every problem at once -------------------------------------------------------------

def test_every_problem_is_reported_at_once_sorted_by_line() -> None:
    source = HEAD + """
[[steps]]
id = "fetch"
task = "lgo"
with = { message = "hi" }

[[steps]]
id = "wait"
kind = "checkpoint"
ttl = "7 parsecs"

[[steps]]
id = "fetch"
task = "log"
with = { message = "{{ 1 + }}" }

[[steps]]
id = "route"
kind = "swtich"

[[steps]]
id = "poll"
kind = "while"
condition = "true"
max_iterations = 0
[[steps.body]]
id = "say"
task = "log"
with = { message = "x" }
"""
    found = problems(source)
    assert [(p.line, p.step_id, p.severity) for p in found] == [
        (line(source, 'task = "lgo"'), "fetch", "error"),
        (line(source, "ttl ="), "wait", "error"),
        (exact_lines(source, 'id = "fetch"')[1], "fetch", "error"),
        (line(source, "{{ 1 + }}"), "fetch", "error"),
        (line(source, 'kind = "swtich"'), "route", "error"),
        (line(source, "max_iterations ="), "poll", "error"),
    ]
    messages = [p.message for p in found]
    assert messages[0] == "unknown task 'lgo'"
    assert messages[1].startswith("ttl: '7 parsecs' is not a duration")
    assert messages[2].startswith("duplicate step id 'fetch'")
    assert messages[3].startswith("with: syntax error")
    assert messages[4] == "unknown step kind 'swtich'"
    assert messages[5] == "max_iterations must be a whole number, 1 or more"


def test_a_misspelt_variable_is_reported_along_with_an_unknown_task() -> None:
    """An unknown task leaves its step in the model, so nothing about variables is
    unknown: the misspelt variable must be reported in the same run, not after the
    task is fixed."""
    source = HEAD + """
[[steps]]
id = "init"
kind = "set"
values = { total = 1 }
[[steps]]
id = "work"
task = "lgo"
with = { message = "hi" }
[[steps]]
id = "say"
task = "log"
with = { message = "{{ totl }}" }
"""
    found = problems(source)
    assert [(p.step_id, p.message) for p in found] == [
        ("work", "unknown task 'lgo'"),
        ("say", "reads variable 'totl', which no param or earlier step sets"),
    ]


def test_problems_inside_a_block_are_reported_with_an_unknown_field_of_its_step() -> None:
    source = HEAD + """
[[steps]]
id = "guard"
kind = "scope"
descripton = "typo"
[[steps.do]]
id = "work"
task = "lgo"
"""
    found = problems(source)
    assert [(p.step_id, p.message) for p in found] == [
        ("guard", "unknown field 'descripton' for a scope step"),
        ("work", "unknown task 'lgo'"),
    ]


def test_a_step_cannot_read_the_result_of_a_sibling_branch() -> None:
    source = HEAD + """
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
[[steps]]
id = "after"
task = "log"
with = { message = "{{ results['l'] }} {{ results['r'] }}" }
"""
    [problem] = problems(source)  # after the join both results are there
    assert problem.message == ("reads results['l'], but step 'l' is in another branch of "
                               "'fan': it has not run on this path")
    assert where(problem) == ("error", line(source, 'id = "r"'),
                              "steps[0].branches[1].do[0]", "r")


def test_a_broken_step_hides_only_the_findings_that_depend_on_it() -> None:
    source = PARAMS + """
[[steps]]
id = "route"
kind = "swtich"
values = { tier = 1 }

[[steps]]
id = "use"
task = "log"
with = { message = "{{ tier }} {{ amout }} {{ results['route'] }}" }
"""
    found = problems(source)
    assert [p.message for p in found] == [
        "unknown step kind 'swtich'",
        "reads variable 'amout', which no param or earlier step sets",
    ]
    assert found[1].hint == "did you mean 'amount'?"
