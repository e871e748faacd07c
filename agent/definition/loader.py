"""TOML text -> a frozen, validated Definition. Every problem is collected, then raised.

Each problem names the file, the line (found from the step's `id = "..."` line, since
tomllib gives no positions), the step path (`steps[2].then[0]`) and id, and a hint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from procctl.agent.definition.checks import check_definition
from procctl.agent.definition.children import ChildSource, DiskChildren
from procctl.agent.definition.liveness import compute_liveness
from procctl.agent.definition.model import (
    Branch,
    CallStep,
    CheckpointStep,
    Definition,
    ForeachStep,
    IfStep,
    InclusiveStep,
    IntermediateReturnStep,
    ParallelStep,
    ParamSpec,
    RetryPolicy,
    ReturnStep,
    ScheduledResumeStep,
    ScopeStep,
    SetStep,
    SignalStep,
    Step,
    SwitchStep,
    TaskStep,
    ThrowStep,
    WhileStep,
)
from procctl.agent.definition.params import PARAM_TYPES, type_matches
from procctl.agent.durations import parse_duration
from procctl.agent.errors import DefinitionError, ExpressionError, Problem
from procctl.agent.expressions import (
    Expression,
    compile_condition,
    compile_template,
    iter_templates,
)
from procctl.agent.tasks import BUILTIN_TASKS
from procctl.agent.tasks.plugins import check_task_reference, is_plugin_reference

COMMON_FIELDS = {"id", "kind", "name", "description"}
KIND_FIELDS: dict[str, set[str]] = {
    "task": {"task", "with", "timeout", "retry", "retries", "retry_delay"},
    "set": {"values"},
    "if": {"condition", "then", "else"},
    "switch": {"cases", "default"},
    "inclusive": {"branches"},
    "parallel": {"branches", "max_concurrency"},
    "foreach": {"items", "as", "index_as", "body"},
    "while": {"condition", "max_iterations", "index_as", "body"},
    "scope": {"do", "catch", "finally", "error_as"},
    "call": {"file", "params"},
    "intermediate_return": {"value"},
    "return": {"value"},
    "throw": {"message"},
    "checkpoint": {"correlation_id", "ttl", "continue", "commit", "recover", "resume_after",
                   "resume_at", "on_expire"},
    "scheduled_resume": {"after", "at", "max_iterations"},
    "signal": {"correlation_id", "payload", "signal_id"},
}
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "task": ("task",),
    "set": ("values",),
    "if": ("condition", "then"),
    "foreach": ("items", "body"),
    "switch": ("cases",),
    "inclusive": ("branches",),
    "parallel": ("branches",),
    "while": ("condition", "max_iterations", "body"),
    "scope": ("do",),
    "call": ("file",),
    "intermediate_return": ("value",),
    "throw": ("message",),
    "signal": ("correlation_id",),
}
REQUIRED_HINTS: dict[tuple[str, str], str] = {
    ("while", "max_iterations"): "it bounds the loop: max_iterations = 100",
    ("while", "condition"): 'e.g. condition = "remaining > 0"',
    ("if", "condition"): 'e.g. condition = "amount > 1000"',
    ("foreach", "items"): 'e.g. items = "{{ orders }}"',
    ("call", "file"): 'the definition to run, e.g. file = "child.toml"',
    ("scope", "do"): "add its steps as [[steps.do]] tables",
    ("intermediate_return", "value"): 'e.g. value = { accepted = true }',
    ("signal", "correlation_id"): 'e.g. correlation_id = "approval-{{ order }}"',
}
PROCESS_FIELDS = {"name", "version", "description", "params", "on_crash"}
ON_CRASH = ("fail", "restart", "hold")
PARAM_FIELDS = {"type", "default", "required", "description"}
RETRY_FIELDS = {"attempts", "delay", "backoff", "factor", "max_delay", "jitter", "on"}
CASE_FIELDS = {"name", "when", "do"}
BUILTIN_VARIABLES = ("result", "results", "process", "step")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STEP_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def load_definition(path: Path | str) -> Definition:
    """Read and validate a definition file."""
    file = Path(path)
    try:
        source = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionError(
            [Problem("no such file", file=str(file), hint="check the path")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([Problem(f"cannot read: {exc}", file=str(file))]) from None
    return parse_definition(source, str(file))


def parse_definition(source: str, file: str | None = None, *,
                     children: ChildSource | None = None) -> Definition:
    """Validate TOML source text; raises DefinitionError listing every problem.

    `call` steps' files come from `children` (by default the disk, beside `file`).
    Warnings (findings that do not stop a run) are in the definition's `warnings`.
    """
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        line = int(position.group(1)) if position else None
        text = _TOML_POSITION.sub("", message).strip()
        raise DefinitionError(
            [Problem(f"TOML syntax error: {text}", file=file, line=line,
                     hint="fix the TOML syntax at that line")]
        ) from None
    builder = _Builder(source, file, children or DiskChildren.beside(file))
    definition = builder.build(data)
    problems = builder.problems
    reached: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    if definition is not None:
        # Steps with problems were left out of the model: the variables they could set and
        # the ids in them count as known, so that reading them is not reported as well.
        problems.extend(check_definition(definition, reached,
                                         unknown_names=frozenset(builder.dropped_names),
                                         unknown_ids=frozenset(builder.dropped_ids)))
    errors = [p for p in problems if p.severity == "error"]
    if errors or definition is None:
        raise DefinitionError(sorted(problems, key=_problem_order))
    return dataclasses.replace(definition, liveness=compute_liveness(definition, reached),
                               warnings=tuple(sorted(problems, key=_problem_order)))


def _problem_order(problem: Problem) -> tuple[int, int]:
    return (problem.line or 0, 0 if problem.severity == "error" else 1)


@dataclass
class _Builder:
    source: str
    file: str | None
    children_source: ChildSource
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

    def problem(self, message: str, *, step: _Where | None = None, line: int | None = None,
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

    # -- process ------------------------------------------------------------------

    def build(self, data: dict[str, Any]) -> Definition | None:
        for key in data:
            if key not in ("process", "steps"):
                self.problem(f"unknown top-level table {key!r}",
                             line=self.line_of(rf"^\s*\[*{re.escape(key)}\b"),
                             hint=_did_you_mean(key, ["process", "steps"])
                             or "use [process] and [[steps]]")
        process = data.get("process")
        if not isinstance(process, dict):
            self.problem("missing [process] table", line=1,
                         hint='start the file with [process] and name = "..."')
            process = {}
        process_line = self.line_of(r"^\s*\[process\]")
        for key in process:
            if key not in PROCESS_FIELDS:
                self.problem(f"unknown field {key!r} in [process]",
                             line=self.line_of(rf"^\s*{re.escape(key)}\s*="),
                             hint=_did_you_mean(key, PROCESS_FIELDS))
        name = process.get("name")
        if not isinstance(name, str) or not name.strip():
            self.problem("[process] needs a name", line=process_line,
                         hint='add name = "my-process"')
            name = ""
        version = process.get("version")
        if version is not None and not isinstance(version, str | int | float):
            self.problem("[process] version must be a string", line=process_line)
        description = process.get("description", "")
        on_crash = process.get("on_crash", "fail")
        if on_crash not in ON_CRASH:
            self.problem(f"on_crash {on_crash!r} is not one of {', '.join(ON_CRASH)}",
                         line=self.line_of(r"^\s*on_crash\s*="),
                         hint=_did_you_mean(str(on_crash), ON_CRASH)
                         or "fail (the default), restart or hold")
            on_crash = "fail"
        params = self.build_params(process.get("params", {}))
        raw_steps = data.get("steps")
        if raw_steps is None:
            self.problem("the process has no steps", hint="add at least one [[steps]] table")
            raw_steps = []
        steps = self.build_block(raw_steps, "steps")
        digest = hashlib.sha256(self.source.encode())
        for ref, child in sorted(self.children.items()):
            # The hash covers what the calls run, so a changed child is a new definition.
            digest.update(f"\0call:{ref}={child.sha256}".encode())
        sha = digest.hexdigest()
        return Definition(
            name=name, version=None if version is None else str(version),
            description=str(description), params=params, steps=steps,
            source=self.source, sha256=sha, file=self.file, on_crash=str(on_crash),
            children=dict(self.children),
        )

    def build_params(self, raw: Any) -> tuple[ParamSpec, ...]:
        if not isinstance(raw, dict):
            self.problem("[process.params] must be a table of params",
                         hint="see docs/process-format.md")
            return ()
        specs: list[ParamSpec] = []
        for name, decl in raw.items():
            line = self.line_of(rf"^\s*\[process\.params\.{re.escape(name)}\]") or self.line_of(
                rf"^\s*{re.escape(name)}\s*=")
            if not _IDENTIFIER.match(name):
                self.problem(f"param name {name!r} is not an identifier", line=line,
                             hint="use letters, digits and _ only, not starting with a digit")
            if isinstance(decl, str):
                decl = {"type": decl}
            if not isinstance(decl, dict):
                self.problem(f"param {name!r} must be a table such as {{ type = \"int\" }}",
                             line=line)
                continue
            for key in decl:
                if key not in PARAM_FIELDS:
                    self.problem(f"unknown field {key!r} in param {name!r}", line=line,
                                 hint=_did_you_mean(key, PARAM_FIELDS))
            kind = decl.get("type", "any")
            if kind not in PARAM_TYPES:
                self.problem(f"param {name!r} has unknown type {kind!r}", line=line,
                             hint=_did_you_mean(str(kind), PARAM_TYPES)
                             or f"use one of {', '.join(PARAM_TYPES)}")
                continue
            has_default = "default" in decl
            default = decl.get("default")
            if has_default and not type_matches(kind, default):
                self.problem(f"param {name!r}: default {default!r} is not {kind}", line=line)
            required = decl.get("required", not has_default)
            if not isinstance(required, bool):
                self.problem(f"param {name!r}: required must be true or false", line=line)
                required = True
            specs.append(ParamSpec(name, kind, required, default, has_default,
                                   str(decl.get("description", ""))))
        return tuple(specs)

    # -- steps --------------------------------------------------------------------

    def build_block(self, raw: Any, path: str) -> tuple[Step, ...]:
        if not isinstance(raw, list):
            self.problem(f"{path} must be an array of tables ([[{path.split('[')[0]}]])")
            return ()
        steps: list[Step] = []
        for index, item in enumerate(raw):
            step = self.build_step(item, f"{path}[{index}]")
            if step is None:
                _what_it_could_set(item, self.dropped_names, self.dropped_ids)
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

    def build_step(self, raw: Any, path: str) -> Step | None:
        if not isinstance(raw, dict):
            self.problem(f"{path} must be a table")
            return None
        step_id = raw.get("id")
        line = None
        if isinstance(step_id, str):
            line = self.line_of(rf"^\s*id\s*=\s*[\"']{re.escape(step_id)}[\"']", self._search_from)
            if line is not None:
                self._search_from = line
        where = _Where(path, step_id if isinstance(step_id, str) else None, line)
        if not isinstance(step_id, str) or not step_id:
            self.problem("step has no id", step=where, hint='add id = "a-unique-name"')
        elif not _STEP_ID.match(step_id):
            self.problem(f"step id {step_id!r} has characters other than letters, digits, _ . -",
                         step=where)
        kind = raw.get("kind", "task" if "task" in raw else None)
        if kind is None:
            self.problem("step has no kind", step=where,
                         hint=f"add kind = one of {', '.join(KIND_FIELDS)}")
            return None
        if kind not in KIND_FIELDS:
            self.problem(f"unknown step kind {kind!r}", step=where, key="kind",
                         hint=_did_you_mean(str(kind), KIND_FIELDS)
                         or f"use one of {', '.join(KIND_FIELDS)}")
            return None
        allowed = COMMON_FIELDS | KIND_FIELDS[kind]
        unknown = [key for key in raw if key not in allowed]
        for key in unknown:
            if key not in allowed:
                self.problem(f"unknown field {key!r} for a {kind} step", step=where, key=key,
                             hint=_did_you_mean(key, allowed)
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
        builder: Callable[[dict[str, Any], dict[str, Any], _Where], Step | None] = getattr(
            self, f"_build_{kind}")
        return builder(raw, base, where)

    def templates(self, value: Any, where: _Where, field_name: str) -> tuple[Expression, ...]:
        found: list[Expression] = []
        for text in iter_templates(value):
            try:
                found.append(compile_template(text))
            except ExpressionError as exc:
                self.problem(f"{field_name}: {exc.message}", step=where, key=field_name,
                             hint="expressions use Jinja syntax: {{ name }}, {{ a + 1 }}")
        return tuple(found)

    def condition(self, value: Any, where: _Where, field_name: str,
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

    def duration(self, raw: dict[str, Any], key: str, where: _Where, *,
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

    def _build_task(self, raw: dict[str, Any], base: dict[str, Any], where: _Where) -> Step | None:
        task = raw["task"]
        args = raw.get("with", {})
        if not isinstance(args, dict):
            self.problem("'with' must be a table of arguments", step=where, key="with",
                         hint='write with = { message = "hi" }')
            return None
        if not isinstance(task, str) or not task:
            self.problem("task must be a task name or \"module:function\"", step=where,
                         key="task")
            return None
        spec = BUILTIN_TASKS.get(task)
        if spec is None:
            trouble = check_task_reference(task, self.base_dir())
            if trouble is not None:
                close = None if is_plugin_reference(task) else _did_you_mean(task, BUILTIN_TASKS)
                self.problem(trouble, step=where, key="task",
                             hint=close or f"built-in tasks: {', '.join(BUILTIN_TASKS)}; "
                             "a plugin is \"module:function\" (see docs/plugins.md)")
        else:
            for key in args:
                if key not in spec.args:
                    self.problem(f"task {task!r} takes no argument {key!r}", step=where,
                                 key="with",
                                 hint=_did_you_mean(key, spec.args)
                                 or f"it takes {', '.join(spec.args)}")
            for key, required in spec.args.items():
                if required and key not in args:
                    self.problem(f"task {task!r} needs argument {key!r}", step=where,
                                 hint=f"add it under with = {{ {key} = ... }}")
        expressions = self.templates(args, where, "with")
        timeout = self.duration(raw, "timeout", where)
        return TaskStep(**base, task=task, args=tuple(args.items()),
                        arg_expressions=expressions, timeout=timeout,
                        retry=self.retry_policy(raw, where))

    def base_dir(self) -> Path:
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def retry_policy(self, raw: dict[str, Any], where: _Where) -> RetryPolicy:
        """`retry = { ... }`, or the short form `retries` (+ `retry_delay`)."""
        if "retry" not in raw:
            retries = raw.get("retries", 0)
            if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
                self.problem("retries must be a whole number, 0 or more", step=where,
                             key="retries")
                retries = 0
            delay = self.duration(raw, "retry_delay", where)
            return RetryPolicy(attempts=retries + 1, delay=1.0 if delay is None else delay)
        if "retries" in raw or "retry_delay" in raw:
            self.problem("give retry = { ... } or retries/retry_delay, not both", step=where,
                         key="retry")
        table = raw["retry"]
        if not isinstance(table, dict):
            self.problem("retry must be a table", step=where, key="retry",
                         hint='e.g. retry = { attempts = 5, delay = "1s", '
                         'backoff = "exponential" }')
            return RetryPolicy()
        for key in table:
            if key not in RETRY_FIELDS:
                self.problem(f"unknown field {key!r} in retry", step=where, key="retry",
                             hint=_did_you_mean(key, RETRY_FIELDS)
                             or f"retry takes {', '.join(sorted(RETRY_FIELDS))}")
        attempts = table.get("attempts", 3)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            self.problem("retry.attempts must be a whole number, 1 or more (the first try "
                         "counts)", step=where, key="retry")
            attempts = 1
        backoff = table.get("backoff", "fixed")
        if backoff not in ("fixed", "exponential"):
            self.problem(f"retry.backoff {backoff!r} is not fixed or exponential", step=where,
                         key="retry", hint=_did_you_mean(str(backoff), ("fixed", "exponential")))
            backoff = "fixed"
        factor = table.get("factor", 2.0)
        if not isinstance(factor, int | float) or isinstance(factor, bool) or factor < 1:
            self.problem("retry.factor must be a number, 1 or more", step=where, key="retry")
            factor = 2.0
        jitter = table.get("jitter", 0.0)
        if isinstance(jitter, bool):
            jitter = 0.5 if jitter else 0.0
        if (not isinstance(jitter, int | float) or isinstance(jitter, bool)
                or not 0 <= jitter <= 1):
            self.problem("retry.jitter must be true, false or a fraction from 0 to 1",
                         step=where, key="retry")
            jitter = 0.0
        on = table.get("on", [])
        if isinstance(on, str):
            on = [on]
        if not isinstance(on, list) or not all(isinstance(o, str) for o in on):
            self.problem("retry.on must be a list of error kinds", step=where, key="retry",
                         hint='e.g. on = ["timeout", "task_error", "ConnectionError"]')
            on = []
        delay = self.duration(table, "delay", where, inside="retry")
        max_delay = self.duration(table, "max_delay", where, inside="retry")
        return RetryPolicy(attempts=attempts, delay=1.0 if delay is None else delay,
                           backoff=str(backoff), factor=float(factor), max_delay=max_delay,
                           jitter=float(jitter), on=tuple(on))

    def _build_set(self, raw: dict[str, Any], base: dict[str, Any], where: _Where) -> Step | None:
        values = raw["values"]
        if not isinstance(values, dict) or not values:
            self.problem("'values' must be a table of name = value", step=where,
                         hint='write values = { total = "{{ a + b }}" }')
            return None
        for name in values:
            if not _IDENTIFIER.match(name):
                self.problem(f"variable name {name!r} is not an identifier", step=where)
            if name in BUILTIN_VARIABLES:
                self.problem(f"{name!r} is a built-in name and cannot be set", step=where)
        expressions = self.templates(values, where, "values")
        return SetStep(**base, values=tuple(values.items()), value_expressions=expressions)

    def _build_if(self, raw: dict[str, Any], base: dict[str, Any], where: _Where) -> Step | None:
        condition = self.condition(raw["condition"], where, "condition")
        then = self.build_block(raw["then"], f"{where.path}.then")
        else_ = self.build_block(raw.get("else", []), f"{where.path}.else")
        if condition is None:
            return None
        return IfStep(**base, condition=condition, then=then, else_=else_)

    def _build_foreach(
        self, raw: dict[str, Any], base: dict[str, Any], where: _Where
    ) -> Step | None:
        items_raw = raw["items"]
        if isinstance(items_raw, list):
            self.problem("items must be an expression that gives a list", step=where,
                         hint='write items = "{{ [1, 2, 3] }}" or items = "{{ files }}"')
            return None
        items = self.condition(items_raw, where, "items")
        item_var = raw.get("as", "item")
        index_var = raw.get("index_as")
        for name in (item_var, index_var):
            if name is not None and (not isinstance(name, str) or not _IDENTIFIER.match(name)):
                self.problem(f"loop variable {name!r} is not an identifier", step=where)
        body = self.build_block(raw["body"], f"{where.path}.body")
        if items is None:
            return None
        return ForeachStep(**base, items=items, item_var=str(item_var),
                           index_var=None if index_var is None else str(index_var), body=body)

    def branches(self, raw: Any, where: _Where, field_name: str, *,
                 with_when: bool) -> list[Branch] | None:
        """`[[steps.cases]]` / `[[steps.branches]]`: name, when (unless parallel), do."""
        allowed = CASE_FIELDS if with_when else CASE_FIELDS - {"when"}
        table = _table_name(where.path)
        example = f"[[{table}.{field_name}]]"
        if not isinstance(raw, list) or not raw:
            self.problem(f"{field_name} must be a non-empty array of tables", step=where,
                         key=field_name,
                         hint=f"write {example} with " + ("when = \"...\" and " if with_when
                                                          else "") + "its steps under do")
            return None
        found: list[Branch] = []
        names: set[str] = set()
        ok = True
        for index, item in enumerate(raw):
            label = f"{field_name}[{index}]"
            at = (field_name, index)
            if not isinstance(item, dict):
                self.problem(f"{label} must be a table", step=where, at=at)
                ok = False
                continue
            misspelt = [key for key in item if key not in allowed]
            for key in misspelt:
                self.problem(f"unknown field {key!r} in {label}", step=where, key=key,
                             at=at, hint=_did_you_mean(key, allowed)
                             or f"{field_name} take {', '.join(sorted(allowed))}")
            name = item.get("name", str(index + 1))
            if not isinstance(name, str) or not name:
                self.problem(f"{label}: name must be a non-empty string", step=where,
                             key="name", at=at)
                name = str(index + 1)
            if name in names:
                self.problem(f"{label}: another branch is already named {name!r}", step=where,
                             key="name", at=at, hint="give every branch its own name")
            names.add(name)
            when = None
            if with_when:
                if "when" not in item:
                    if not get_close_matches("when", misspelt, n=1):  # else: reported
                        self.problem(f"{label} needs when = \"<condition>\"", step=where,
                                     at=at, hint='e.g. when = "amount > 1000"')
                    ok = False
                else:
                    when = self.condition(item["when"], where, "when", at)
                    ok = ok and when is not None
            if "do" not in item:
                self.problem(f"{label} needs its steps under do", step=where, at=at,
                             hint=f"add [[{table}.{field_name}.do]] tables")
            steps = self.build_block(item.get("do", []), f"{where.path}.{label}.do")
            found.append(Branch(name, label, when, steps))
        return found if ok else None

    def _build_switch(self, raw: dict[str, Any], base: dict[str, Any],
                      where: _Where) -> Step | None:
        cases = self.branches(raw["cases"], where, "cases", with_when=True)
        default = self.build_block(raw.get("default", []), f"{where.path}.default")
        if cases is None:
            return None
        return SwitchStep(**base, branches=(*cases, Branch("default", "default", None, default)))

    def _build_inclusive(self, raw: dict[str, Any], base: dict[str, Any],
                         where: _Where) -> Step | None:
        branches = self.branches(raw["branches"], where, "branches", with_when=True)
        return None if branches is None else InclusiveStep(**base, branches=tuple(branches))

    def _build_parallel(self, raw: dict[str, Any], base: dict[str, Any],
                        where: _Where) -> Step | None:
        branches = self.branches(raw["branches"], where, "branches", with_when=False)
        limit = raw.get("max_concurrency")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            self.problem("max_concurrency must be a whole number, 1 or more", step=where,
                         key="max_concurrency")
            limit = None
        if branches is None:
            return None
        return ParallelStep(**base, branches=tuple(branches), max_concurrency=limit)

    def _build_while(self, raw: dict[str, Any], base: dict[str, Any],
                     where: _Where) -> Step | None:
        condition = self.condition(raw["condition"], where, "condition")
        limit = raw["max_iterations"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            self.problem("max_iterations must be a whole number, 1 or more", step=where,
                         key="max_iterations", hint="it bounds the loop: max_iterations = 100")
            limit = 1
        index_var = raw.get("index_as")
        if index_var is not None and (not isinstance(index_var, str)
                                      or not _IDENTIFIER.match(index_var)):
            self.problem(f"loop variable {index_var!r} is not an identifier", step=where,
                         key="index_as")
            index_var = None
        body = self.build_block(raw["body"], f"{where.path}.body")
        if condition is None:
            return None
        return WhileStep(**base, condition=condition, max_iterations=limit,
                         index_var=index_var, body=body)

    def _build_scope(self, raw: dict[str, Any], base: dict[str, Any],
                     where: _Where) -> Step | None:
        error_as = raw.get("error_as", "error")
        if (not isinstance(error_as, str) or not _IDENTIFIER.match(error_as)
                or error_as in BUILTIN_VARIABLES):
            self.problem(f"error_as {error_as!r} is not a usable variable name", step=where,
                         key="error_as", hint='e.g. error_as = "failure"')
            error_as = "error"
        body = self.build_block(raw["do"], f"{where.path}.do")
        catch = (self.build_block(raw["catch"], f"{where.path}.catch")
                 if "catch" in raw else None)
        final = self.build_block(raw.get("finally", []), f"{where.path}.finally")
        return ScopeStep(**base, body=body, catch=catch, finally_=final, error_as=error_as)

    def _build_call(self, raw: dict[str, Any], base: dict[str, Any],
                    where: _Where) -> Step | None:
        ref = raw["file"]
        params = raw.get("params", {})
        if not isinstance(params, dict):
            self.problem("params must be a table of name = value", step=where, key="params",
                         hint='e.g. params = { order = "{{ order }}" }')
            return None
        expressions = self.templates(params, where, "params")
        if not isinstance(ref, str) or not ref:
            self.problem("file must be the path of a definition file", step=where, key="file")
            return None
        child = self.children.get(ref)
        if child is None:
            try:
                text, child_file, source = self.children_source.read(ref)
                child = parse_definition(text, child_file, children=source)
            except ValueError as exc:
                self.problem(f"call: {exc}", step=where, key="file",
                             hint="file is relative to this definition's directory")
                return None
            except DefinitionError as exc:
                self.problem(f"call: {ref} is not valid: {exc.problems[0].render()}"
                             + (f" (and {len(exc.problems) - 1} more)"
                                if len(exc.problems) > 1 else ""),
                             step=where, key="file", hint=f"run: procctl validate {ref}")
                return None
            self.children[ref] = child
        declared = {spec.name: spec for spec in child.params}
        for name in params:
            if name not in declared:
                self.problem(f"call: {ref} has no param {name!r}", step=where, key="params",
                             hint=_did_you_mean(name, declared)
                             or f"it takes {', '.join(declared) or 'no params'}")
        for spec in child.params:
            if spec.required and not spec.has_default and spec.name not in params:
                self.problem(f"call: {ref} needs param {spec.name!r}", step=where,
                             key="params", hint=f"add it: params = {{ {spec.name} = ... }}")
        return CallStep(**base, file=ref, child=child, params=params,
                        param_expressions=expressions)

    def _build_intermediate_return(self, raw: dict[str, Any], base: dict[str, Any],
                                   where: _Where) -> Step:
        value = raw["value"]
        return IntermediateReturnStep(**base, value=value,
                                      value_expressions=self.templates(value, where, "value"))

    def _build_return(self, raw: dict[str, Any], base: dict[str, Any], where: _Where) -> Step:
        value = raw.get("value")
        expressions = self.templates(value, where, "value")
        return ReturnStep(**base, value=value, value_expressions=expressions)

    def _build_throw(self, raw: dict[str, Any], base: dict[str, Any], where: _Where) -> Step | None:
        message = raw["message"]
        if not isinstance(message, str):
            self.problem("message must be a string", step=where)
            return None
        expressions = self.templates(message, where, "message")
        if not expressions:
            return None
        return ThrowStep(**base, message=expressions[0])

    def _build_checkpoint(
        self, raw: dict[str, Any], base: dict[str, Any], where: _Where
    ) -> Step | None:
        correlation = None
        if "correlation_id" in raw:
            found = self.templates(str(raw["correlation_id"]), where, "correlation_id")
            correlation = found[0] if found else None
        ttl = None
        if "ttl" in raw:
            try:
                ttl = parse_duration(raw["ttl"], number_unit="m")  # Frends: minutes
            except ValueError as exc:
                self.problem(f"ttl: {exc}", step=where, key="ttl")
        keep_going = raw.get("continue", False)
        if not isinstance(keep_going, bool):
            self.problem("continue must be true or false", step=where, key="continue")
            keep_going = False
        resume_at = None
        if "resume_at" in raw:
            found = self.templates(str(raw["resume_at"]), where, "resume_at")
            resume_at = found[0] if found else None
        if "resume_at" in raw and "resume_after" in raw:
            self.problem("give resume_after or resume_at, not both", step=where,
                         key="resume_at")
        on_expire, payload = self.expire_policy(raw.get("on_expire", "fail"), where)
        commit = self.build_block(raw.get("commit", []), f"{where.path}.commit")
        recover = self.build_block(raw.get("recover", []), f"{where.path}.recover")
        return CheckpointStep(
            **base, correlation_id=correlation, ttl=ttl, continue_=keep_going, commit=commit,
            recover=recover, resume_after=self.duration(raw, "resume_after", where),
            resume_at=resume_at, on_expire=on_expire, expire_payload=payload)

    def expire_policy(self, raw: Any, where: _Where) -> tuple[str, Any]:
        if raw == "fail":
            return "fail", None
        if isinstance(raw, dict) and set(raw) == {"resume"}:
            return "resume", raw["resume"]
        self.problem("on_expire must be \"fail\" or a table { resume = PAYLOAD }", step=where,
                     key="on_expire",
                     hint="e.g. on_expire = { resume = { approved = false } }")
        return "fail", None

    def _build_scheduled_resume(
        self, raw: dict[str, Any], base: dict[str, Any], where: _Where
    ) -> Step | None:
        if ("after" in raw) == ("at" in raw):
            self.problem("scheduled_resume needs exactly one of 'after' or 'at'", step=where,
                         hint='e.g. after = "5s"')
            return None
        at = None
        if "at" in raw:
            found = self.templates(str(raw["at"]), where, "at")
            at = found[0] if found else None
        limit = raw.get("max_iterations")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            self.problem("max_iterations must be a whole number, 1 or more", step=where,
                         key="max_iterations")
            limit = None
        return ScheduledResumeStep(**base, after=self.duration(raw, "after", where), at=at,
                                   max_iterations=limit)

    def _build_signal(self, raw: dict[str, Any], base: dict[str, Any],
                      where: _Where) -> Step | None:
        found = self.templates(str(raw["correlation_id"]), where, "correlation_id")
        payload = raw.get("payload", {})
        expressions = self.templates(payload, where, "payload")
        signal_id = None
        if "signal_id" in raw:
            ids = self.templates(str(raw["signal_id"]), where, "signal_id")
            signal_id = ids[0] if ids else None
        if not found:
            return None
        return SignalStep(**base, correlation_id=found[0], payload=payload,
                          payload_expressions=expressions, signal_id=signal_id)


@dataclass(frozen=True)
class _Where:
    path: str
    id: str | None
    line: int | None


def _what_it_could_set(raw: Any, names: set[str], ids: set[str]) -> None:
    """The variables a step's raw table (and the steps in it) could set, and its ids."""
    if isinstance(raw, list):
        for item in raw:
            _what_it_could_set(item, names, ids)
        return
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("id"), str):
        ids.add(raw["id"])
    names.update(raw[key] for key in ("as", "index_as", "error_as")
                 if isinstance(raw.get(key), str))
    if isinstance(raw.get("values"), dict):
        names.update(raw["values"])
    for value in raw.values():
        if isinstance(value, list | dict):
            _what_it_could_set(value, names, ids)


def _table_name(path: str) -> str:
    """The TOML table a step path lives in: steps[2].cases[0].do[1] -> steps.cases.do."""
    return re.sub(r"\[\d+\]", "", path)


def _did_you_mean(word: str, options: Any) -> str | None:
    close = get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
