"""The base of the definition builder: problems and their lines, blocks and steps.

tomllib gives no positions, so lines are found in the source text: a step's line is
the line of its `id = "..."`, a field's the line of `field =` in its table (or of a
sub-table's header such as `[[steps.cases]]`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from procctl.agent.definition.children import ChildSource
from procctl.agent.definition.fields import (
    COMMON_FIELDS,
    KIND_FIELDS,
    REQUIRED_FIELDS,
    REQUIRED_HINTS,
    STEP_ID,
    Where,
    did_you_mean,
    is_step_kind,
    what_it_could_set,
)
from procctl.agent.definition.model import (
    AnyStep,
    Definition,
    StepKindName,
)
from procctl.agent.durations import parse_duration
from procctl.agent.errors import ExpressionError, Problem
from procctl.agent.expressions import (
    Expression,
    compile_condition,
    compile_template,
    iter_templates,
)


@dataclass
class BuilderBase(ABC):
    """Collects problems, with the line each is at, while steps are built; checks a
    step's kind and fields, then hands it to the builder of its kind (`build_kind`,
    in step_builders.py)."""

    source: str
    file: str | None
    children_source: ChildSource
    #: parse_definition, for the files `call` steps run (handed in: no import cycle)
    parse_child: Callable[..., Definition]
    problems: list[Problem] = field(default_factory=list)
    children: dict[str, Definition] = field(default_factory=dict)
    #: variables that steps left out of the model for their problems could set, and
    #: the ids in those steps
    dropped_names: set[str] = field(default_factory=set)
    dropped_ids: set[str] = field(default_factory=set)
    _lines: list[str] = field(default_factory=list)
    _search_from: int = 0

    def __post_init__(self) -> None:
        self._lines = self.source.splitlines()

    def problem(self, message: str, *, step: Where | None = None, line: int | None = None,
                hint: str | None = None, key: str | None = None,
                severity: str = "error", at: tuple[str, int] | None = None) -> None:
        """Record a problem; with `key`, at the line of that field of the step (with
        `at` = (field, n), of its n-th sub-table such as a switch's cases)."""
        if step is not None and step.line is not None and (key is not None or at is not None):
            line = self.field_line(step.line, key, at=at)
        self.problems.append(Problem(
            message, file=self.file,
            line=line if line is not None else (step.line if step else None),
            step_path=step.path if step else None, step_id=step.id if step else None, hint=hint,
            severity=severity,
        ))

    def field_line(self, step_line: int, key: str | None, *,
                   at: tuple[str, int] | None = None) -> int | None:
        """The line of `key = ...` in the table that holds the step starting near
        step_line, or in its sub-table `at`; for a key that names a sub-table, the
        line of that sub-table's header. Falls back to the step's line."""
        start = step_line - 1
        while start > 0 and not self._lines[start].lstrip().startswith("["):
            start -= 1
        header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]", self._lines[start])
        table = header.group(1) if header else None
        if at is not None and table is not None:
            found = self._header_line(f"{table}.{at[0]}", start, at[1])
            if found is None:
                return step_line
            start, table = found - 1, f"{table}.{at[0]}"
            if key is None:
                return found
        if key is None:
            return step_line
        regex = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start + 1, len(self._lines)):
            text = self._lines[number].lstrip()
            if text.startswith("["):
                break
            if regex.match(text):
                return number + 1
        if table is not None:
            sub = self._header_line(f"{table}.{key}", start, 0)
            if sub is not None:
                return sub
        return step_line

    def _header_line(self, name: str, start: int, nth: int) -> int | None:
        """The line of the nth `[[name]]` (or `[name]`) header after line index start."""
        regex = re.compile(rf"^\s*\[\[?\s*{re.escape(name)}\s*\]")
        for number in range(start + 1, len(self._lines)):
            if regex.match(self._lines[number]):
                if nth == 0:
                    return number + 1
                nth -= 1
        return None

    def line_of(self, pattern: str, start: int = 0) -> int | None:
        regex = re.compile(pattern)
        for number in range(start, len(self._lines)):
            if regex.search(self._lines[number]):
                return number + 1
        return None

    def build_block(self, raw: Any, path: str) -> tuple[AnyStep, ...]:
        if not isinstance(raw, list):
            self.problem(f"{path} must be an array of tables ([[{path.split('[')[0]}]])")
            return ()
        steps: list[AnyStep] = []
        for index, item in enumerate(raw):
            step = self.build_step(item, f"{path}[{index}]")
            if step is None:
                what_it_could_set(item, self.dropped_names, self.dropped_ids)
            else:
                steps.append(step)
        return tuple(steps)

    def scan_blocks(self, raw: dict[str, Any], path: str) -> None:
        """Check the blocks of a step that cannot be built, so that their problems are
        reported now, not after the step's own are fixed."""
        for key, value in raw.items():
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                continue
            for index, item in enumerate(value):
                if "do" in item and not ({"id", "kind", "task"} & set(item)):
                    self.build_block(item["do"], f"{path}.{key}[{index}].do")
            if all({"id", "kind", "task"} & set(item) for item in value):
                self.build_block(value, f"{path}.{key}")

    def build_step(self, raw: Any, path: str) -> AnyStep | None:
        if not isinstance(raw, dict):
            self.problem(f"{path} must be a table")
            return None
        step_id = raw.get("id")
        line = None
        if isinstance(step_id, str):
            line = self.line_of(rf"^\s*id\s*=\s*[\"']{re.escape(step_id)}[\"']", self._search_from)
            if line is not None:
                self._search_from = line
        where = Where(path, step_id if isinstance(step_id, str) else None, line)
        if not isinstance(step_id, str) or not step_id:
            self.problem("step has no id", step=where, hint='add id = "a-unique-name"')
        elif not STEP_ID.match(step_id):
            self.problem(f"step id {step_id!r} has characters other than letters, digits, _ . -",
                         step=where)
        kind = raw.get("kind", "task" if "task" in raw else None)
        if kind is None:
            self.problem("step has no kind", step=where,
                         hint=f"add kind = one of {', '.join(KIND_FIELDS)}")
            return None
        if not is_step_kind(kind):
            self.problem(f"unknown step kind {kind!r}", step=where, key="kind",
                         hint=did_you_mean(str(kind), KIND_FIELDS)
                         or f"use one of {', '.join(KIND_FIELDS)}")
            return None
        allowed = COMMON_FIELDS | KIND_FIELDS[kind]
        unknown = [key for key in raw if key not in allowed]
        for key in unknown:
            if key not in allowed:
                self.problem(f"unknown field {key!r} for a {kind} step", step=where, key=key,
                             hint=did_you_mean(key, allowed)
                             or f"{kind} steps take {', '.join(sorted(KIND_FIELDS[kind]))}")
        missing = [key for key in REQUIRED_FIELDS.get(kind, ()) if key not in raw]
        for key in missing:
            self.problem(f"{kind} step needs {key!r}", step=where,
                         hint=REQUIRED_HINTS.get((kind, key),
                                                 f"see {kind} steps in docs/process-format.md"))
        bad_id = ("step id ", "step has no id")
        # An unknown field is often a misspelt one: building the step would only add
        # findings about what it then lacks. Its blocks are still checked.
        if missing or unknown or any(p.step_path == path and p.message.startswith(bad_id)
                                     for p in self.problems):
            self.scan_blocks(raw, path)
            return None
        base = {"id": step_id or "", "kind": kind, "path": path, "line": line}
        return self.build_kind(kind, raw, base, where)

    @abstractmethod
    def build_kind(self, kind: StepKindName, raw: dict[str, Any], base: dict[str, Any],
                   where: Where) -> AnyStep | None:
        """A step of `kind` from its raw table, whose fields are known to be allowed and
        present; `base` holds the fields every step has. None when it has problems."""

    def templates(self, value: Any, where: Where, field_name: str) -> tuple[Expression, ...]:
        found: list[Expression] = []
        for text in iter_templates(value):
            try:
                found.append(compile_template(text))
            except ExpressionError as exc:
                self.problem(f"{field_name}: {exc.message}", step=where, key=field_name,
                             hint="expressions use Jinja syntax: {{ name }}, {{ a + 1 }}")
        return tuple(found)

    def condition(self, value: Any, where: Where, field_name: str,
                  at: tuple[str, int] | None = None) -> Expression | None:
        if not isinstance(value, str):
            self.problem(f"{field_name} must be an expression string", step=where,
                         key=field_name, at=at)
            return None
        try:
            return compile_condition(value)
        except ExpressionError as exc:
            self.problem(f"{field_name}: {exc.message}", step=where, key=field_name, at=at,
                         hint="write a bare expression, e.g. condition = \"count > 3\"")
            return None

    def duration(self, raw: dict[str, Any], key: str, where: Where, *,
                 inside: str | None = None) -> float | None:
        """A duration field of the step, or of its inline table `inside` (e.g. retry)."""
        if key not in raw:
            return None
        try:
            return parse_duration(raw[key])
        except ValueError as exc:
            label = f"{inside}.{key}" if inside else key
            self.problem(f"{label}: {exc}", step=where, key=inside or key)
            return None
