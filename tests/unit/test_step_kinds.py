"""Dispatch on step kind is exhaustive (issue 11).

The step kinds are a closed set: `StepKindName` (the names a file may use) and
`AnyStep` (the union of the concrete step classes) in agent/definition/model.py. Each
view of a definition (builders, field tables, checks, liveness, the drawings, the
tree's colours, the engine's runner) matches over them and ends in `assert_never`, so
a kind that a view leaves out is a strict mypy error. These tests hold the two sets
together and show mypy naming every view when a kind is added.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

from procctl.agent.definition import load_definition
from procctl.agent.definition.fields import KIND_FIELDS, REQUIRED_FIELDS
from procctl.agent.definition.model import STEP_KINDS, AnyStep, Step, StepKindName
from procctl.agent.errors import DefinitionError

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: one step of every kind (a call needs CHILD beside it)
EVERY_KIND = """\
[process]
name = "every-kind"

[[steps]]
id = "a-task"
task = "log"
with = { message = "hi" }

[[steps]]
id = "a-set"
kind = "set"
values = { n = 1 }

[[steps]]
id = "a-checkpoint"
kind = "checkpoint"
continue = true

[[steps]]
id = "an-if"
kind = "if"
condition = "n > 0"
[[steps.then]]
id = "a-scheduled-resume"
kind = "scheduled_resume"
after = "1h"

[[steps]]
id = "a-switch"
kind = "switch"
[[steps.cases]]
when = "n > 1"
[[steps.cases.do]]
id = "a-throw"
kind = "throw"
message = "big"

[[steps]]
id = "an-inclusive"
kind = "inclusive"
[[steps.branches]]
when = "n > 0"
[[steps.branches.do]]
id = "an-intermediate-return"
kind = "intermediate_return"
value = 1

[[steps]]
id = "a-parallel"
kind = "parallel"
[[steps.branches]]
[[steps.branches.do]]
id = "a-signal"
kind = "signal"
correlation_id = "other"

[[steps]]
id = "a-foreach"
kind = "foreach"
items = "[1, 2]"
[[steps.body]]
id = "in-foreach"
kind = "set"
values = { m = "{{ item }}" }

[[steps]]
id = "a-while"
kind = "while"
condition = "n < 0"
max_iterations = 2
[[steps.body]]
id = "in-while"
kind = "set"
values = { w = 1 }

[[steps]]
id = "a-scope"
kind = "scope"
[[steps.do]]
id = "a-call"
kind = "call"
file = "child.toml"

[[steps]]
id = "a-return"
kind = "return"
value = "{{ n }}"
"""

CHILD = """\
[process]
name = "child"
[[steps]]
id = "back"
kind = "return"
value = 2
"""


def _kind_of(cls: type[Step]) -> str:
    """The one kind name a concrete step class narrows `kind` to."""
    (name,) = get_args(get_type_hints(cls)["kind"])
    assert isinstance(name, str)
    return name


def _concrete_step_classes() -> set[type[Step]]:
    found: set[type[Step]] = set()
    pending = list(Step.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__name__.startswith("_"):  # _BranchingStep, _ValueStep: shared fields
            found.add(cls)
    return found


def test_the_union_and_the_kind_names_are_the_same_closed_set() -> None:
    union = set(get_args(AnyStep))
    assert union == _concrete_step_classes()
    kinds = {cls: _kind_of(cls) for cls in union}
    assert len(set(kinds.values())) == len(union), kinds  # one class per kind
    assert set(kinds.values()) == set(STEP_KINDS) == set(get_args(StepKindName))
    # The field tables cover the same kinds (their order is the order hints list).
    assert list(KIND_FIELDS) == list(STEP_KINDS) == list(REQUIRED_FIELDS)


def test_the_builder_accepts_every_kind_and_builds_its_class(tmp_path: Path) -> None:
    (tmp_path / "child.toml").write_text(CHILD, encoding="utf-8")
    path = tmp_path / "every-kind.toml"
    path.write_text(EVERY_KIND, encoding="utf-8")
    definition = load_definition(path)
    steps = definition.all_steps()
    built = {type(step) for step in steps}
    assert built == set(get_args(AnyStep))
    for step in steps:
        assert step.kind == _kind_of(type(step)), step.id
    # What the file wrote is the kind the step has.
    written = dict(re.findall(r'^id = "([^"]+)"\n(?:kind = "(\w+)")?', EVERY_KIND, re.M))
    assert {step.id: step.kind for step in steps} == {
        step_id: kind or "task" for step_id, kind in written.items()}


ALL_KINDS = "use one of " + ", ".join(STEP_KINDS)


@pytest.mark.parametrize(("kind", "hint"), [
    ('"sett"', "did you mean 'set'?"),
    ('["task"]', "did you mean 'task'?"),  # a TOML array or table once crashed validate
    ('{ name = "scope" }', ALL_KINDS),
    ("3", ALL_KINDS),
])
def test_anything_else_is_an_unknown_kind(tmp_path: Path, kind: str, hint: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[process]\nname = "x"\n[[steps]]\nid = "s"\nkind = {kind}\n',
                    encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    (problem,) = caught.value.problems
    assert problem.message.startswith("unknown step kind"), problem.message
    assert problem.line == 5
    assert problem.hint == hint


# --- a new kind fails type-checking in every view --------------------------------------

NEW_KIND = '''

@dataclass(frozen=True)
class WaitStep(Step):
    """A kind no view handles yet."""

    kind: Literal["wait"]
'''

#: (file, function) of every view that dispatches on kind: where strict mypy points
#: when a kind is added to model.py (docs/architecture.md, "Adding a step kind")
VIEWS = {
    ("agent/definition/fields.py", "_fields_of"),
    ("agent/definition/step_builders.py", "build_kind"),
    ("agent/definition/checks.py", "flow_through"),
    ("agent/definition/checks.py", "_pauses"),
    ("agent/definition/liveness.py", "stores_snapshot"),
    ("agent/definition/liveness.py", "_live_after"),
    ("agent/definition/graph/mermaid.py", "draw_step"),
    ("agent/definition/graph/tree.py", "_tree_step"),
    ("cli/commands/graph.py", "kind_style"),
    ("agent/engine/runner.py", "step_work"),
}


def _with_a_new_kind(root: Path) -> None:
    """Lay the package out under root as procctl (links to the real files), with a
    model.py that adds WaitStep to AnyStep and "wait" to StepKindName."""
    package = root / "procctl"
    package.mkdir()
    for name in ("cli", "store"):
        (package / name).symlink_to(REPO / name, target_is_directory=True)
    agent = package / "agent"
    agent.mkdir()
    for entry in (REPO / "agent").iterdir():
        if entry.name not in ("definition", "__pycache__"):
            (agent / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    definition = agent / "definition"
    definition.mkdir()
    for entry in (REPO / "agent" / "definition").iterdir():
        if entry.name not in ("model.py", "__pycache__"):
            (definition / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    model = (REPO / "agent" / "definition" / "model.py").read_text(encoding="utf-8")
    patched = model.replace('    "signal",\n]', '    "signal", "wait",\n]', 1)
    patched = patched.replace("    | SignalStep\n)", "    | SignalStep\n    | WaitStep\n)", 1)
    marker = "\n\n#: Every concrete step kind"
    patched = patched.replace(marker, NEW_KIND + marker, 1)
    assert patched.count("WaitStep") == 2 and '"wait"' in patched, "model.py changed shape"
    (definition / "model.py").write_text(patched, encoding="utf-8")


def _function_at(file: Path, line: int) -> str:
    """The innermost function whose body holds `line`."""
    best: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.lineno <= line <= (node.end_lineno or node.lineno)
                and (best is None or node.lineno > best.lineno)):
            best = node
    return "<module>" if best is None else best.name


@pytest.mark.timeout(300)
def test_mypy_names_every_view_that_does_not_handle_a_new_kind(tmp_path: Path) -> None:
    _with_a_new_kind(tmp_path)
    proc = subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(REPO / "pyproject.toml"),
         "--cache-dir", str(tmp_path / ".mypy_cache"), "-p", "procctl"],
        cwd=tmp_path, capture_output=True, text=True, timeout=280,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert errors, proc.stdout + proc.stderr
    found = set()
    for line in errors:
        where, number, _ = line.split(":", 2)
        # Every error is a match that does not handle the new kind: the package is
        # otherwise clean, and nothing else needs to change to type-check.
        assert 'to "assert_never" has incompatible type' in line, line
        assert "WaitStep" in line or "'wait'" in line, line
        file = where.removeprefix("procctl/")
        found.add((file, _function_at(REPO / file, int(number))))
    missing = VIEWS - found
    assert not missing, f"mypy did not flag {sorted(missing)}:\n{proc.stdout}"
    assert found == VIEWS, f"a view not listed here (nor in docs/architecture.md): {found}"
