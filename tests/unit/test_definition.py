"""Loading definitions: the frozen model, and every problem collected with its place."""

from __future__ import annotations

import dataclasses

import pytest

from procctl.agent.definition import parse_definition
from procctl.agent.definition.model import ForeachStep, IfStep, SetStep, TaskStep
from procctl.agent.errors import DefinitionError, Problem

GOOD = """\
[process]
name = "orders"
version = "2"

[process.params.count]
type = "int"
default = 2

[[steps]]
id = "init"
kind = "set"
values = { total = 0 }

[[steps]]
id = "loop"
kind = "foreach"
items = "range(count)"
as = "n"
[[steps.body]]
id = "add"
kind = "set"
values = { total = "{{ total + n }}" }

[[steps]]
id = "check"
kind = "if"
condition = "total > 0"
[[steps.then]]
id = "say"
task = "log"
with = { message = "total {{ total }}" }
[[steps.else]]
id = "fail"
kind = "throw"
message = "nothing"
"""


def problems(source: str) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        parse_definition(source, "p.toml")
    return info.value.problems


def test_a_good_definition_loads_into_a_frozen_model() -> None:
    definition = parse_definition(GOOD, "p.toml")
    assert definition.name == "orders"
    assert definition.version == "2"
    assert [s.id for s in definition.steps] == ["init", "loop", "check"]
    loop = definition.steps[1]
    assert isinstance(loop, ForeachStep)
    assert loop.item_var == "n"
    assert loop.body[0].path == "steps[1].body[0]"
    check = definition.steps[2]
    assert isinstance(check, IfStep)
    assert isinstance(check.then[0], TaskStep)
    assert check.then[0].line == GOOD.splitlines().index('id = "say"') + 1
    assert isinstance(definition.steps[0], SetStep)
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.name = "x"  # type: ignore[misc]
    assert [s.id for s in definition.all_steps()] == [
        "init", "loop", "add", "check", "say", "fail"]


def test_reads_and_sets_are_known_statically() -> None:
    definition = parse_definition(GOOD)
    add = definition.steps[1].body[0]  # type: ignore[attr-defined]
    assert add.reads() == {"total", "n"}
    assert add.sets() == {"total"}


def test_toml_syntax_error_names_the_line() -> None:
    [problem] = problems('[process]\nname = "x"\n[[steps]\nid = 1\n')
    assert problem.line == 3
    assert problem.render().startswith("p.toml:3: TOML syntax error")


def test_every_problem_is_reported_at_once() -> None:
    found = problems("""\
[process]
name = "bad"
[[steps]]
id = "a"
kind = "tsk"
[[steps]]
id = "b"
task = "log"
with = { mesage = "hi" }
[[steps]]
id = "c"
kind = "if"
condition = "x >"
then = []
""")
    messages = [p.message for p in found]
    assert "unknown step kind 'tsk'" in messages
    assert "task 'log' takes no argument 'mesage'" in messages
    assert any(m.startswith("condition: syntax error") for m in messages)
    first = found[0]
    assert (first.line, first.step_path, first.step_id, first.hint) == (
        5, "steps[0]", "a", "did you mean 'task'?")


def test_duplicate_ids_name_the_first_use() -> None:
    [problem] = problems("""\
[process]
name = "d"
[[steps]]
id = "x"
task = "log"
with = { message = "1" }
[[steps]]
id = "x"
task = "log"
with = { message = "2" }
""")
    assert problem.message == "duplicate step id 'x' (first used at line 4)"
    assert problem.line == 8


def test_unknown_variable_suggests_a_known_one() -> None:
    [problem] = problems("""\
[process]
name = "v"
[process.params.count]
type = "int"
[[steps]]
id = "x"
task = "log"
with = { message = "{{ coutn }}" }
""")
    assert problem.message == "reads variable 'coutn', which no param or earlier step sets"
    assert problem.hint == "did you mean 'count'?"


def test_variable_set_in_a_branch_counts_after_it() -> None:
    parse_definition("""\
[process]
name = "b"
[[steps]]
id = "pick"
kind = "if"
condition = "true"
[[steps.then]]
id = "s"
kind = "set"
values = { chosen = 1 }
[[steps]]
id = "use"
task = "log"
with = { message = "{{ chosen }}" }
""")


def test_loop_variable_is_not_visible_after_the_loop() -> None:
    [problem] = problems("""\
[process]
name = "l"
[[steps]]
id = "loop"
kind = "foreach"
items = "[1, 2]"
[[steps.body]]
id = "say"
task = "log"
with = { message = "{{ item }}" }
[[steps]]
id = "after"
task = "log"
with = { message = "{{ item }}" }
""")
    assert problem.step_id == "after"


def test_results_of_unknown_or_later_steps_are_refused() -> None:
    found = problems("""\
[process]
name = "r"
[[steps]]
id = "first"
task = "log"
with = { message = "{{ results['second'] }} {{ results['nope'] }}" }
[[steps]]
id = "second"
task = "log"
with = { message = "x" }
""")
    assert {p.message for p in found} == {
        "reads results['second'], but that step runs later",
        "reads results['nope'], but no step has that id",
    }


@pytest.mark.parametrize(("snippet", "needle"), [
    ('id = "s"\nkind = "task"\ntask = "nope"', "unknown task 'nope'"),
    ('id = "s"\nkind = "task"\ntask = "sleep"\nwith = { seconds = 1 }\ntimeout = "soon"',
     "timeout: 'soon' is not a duration"),
    ('kind = "return"', "step has no id"),
    ('id = "s"', "step has no kind"),
    ('id = "s"\nkind = "if"\nthen = []', "if step needs 'condition'"),
    ('id = "s"\nkind = "foreach"\nitems = [1]\nbody = []', "items must be an expression"),
    ('id = "s"\nkind = "set"\nvalues = { result = 1 }', "'result' is a built-in name"),
    ('id = "s"\nkind = "return"\nvalu = 1', "unknown field 'valu' for a return step"),
])
def test_step_problems(snippet: str, needle: str) -> None:
    found = problems(f'[process]\nname = "p"\n[[steps]]\n{snippet}\n')
    assert any(needle in p.message for p in found), [p.message for p in found]


def test_param_declarations_are_checked() -> None:
    found = problems("""\
[process]
name = "p"
[process.params.n]
type = "integer"
[process.params.m]
type = "int"
default = "three"
[[steps]]
id = "s"
kind = "return"
""")
    assert [p.message for p in found] == [
        "param 'n' has unknown type 'integer'",
        "param 'm': default 'three' is not int",
    ]
    assert found[0].line == 3


POOLED = """\
[process]
name = "build"
pool = "{pool}"

[[steps]]
id = "compile"
kind = "set"
values = {{ done = true }}
"""


def test_a_pool_is_kept_and_changes_the_definition_s_hash() -> None:
    pooled = parse_definition(POOLED.format(pool="build-hosts.eu_1"), "build.toml")
    assert pooled.pool == "build-hosts.eu_1"
    unpooled = parse_definition(POOLED.format(pool="x").replace('pool = "x"\n', ""),
                                "build.toml")
    assert unpooled.pool is None
    assert pooled.sha256 != unpooled.sha256


@pytest.mark.parametrize("bad", ["two words", "", "x" * 65, "a/b"])
def test_a_pool_that_is_not_a_name_is_refused_with_its_line(bad: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(POOLED.format(pool=bad), "build.toml")
    problem = caught.value.problems[0]
    assert problem.line == 3
    assert "is not a pool name" in problem.message
