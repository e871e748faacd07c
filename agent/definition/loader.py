"""TOML text -> a frozen, validated Definition. Every problem is collected, then raised.

Each problem names the file, the line (found from the step's `id = "..."` line, since
tomllib gives no positions), the step path (`steps[2].then[0]`) and id, and a hint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

from procctl.agent.definition.checks import check_definition
from procctl.agent.definition.children import ChildSource, DiskChildren
from procctl.agent.definition.fields import (
    IDENTIFIER,
    ON_CRASH,
    PARAM_FIELDS,
    POOL_NAME,
    PROCESS_FIELDS,
    TOML_POSITION,
    did_you_mean,
)
from procctl.agent.definition.liveness import compute_liveness
from procctl.agent.definition.model import (
    Definition,
    ParamSpec,
)
from procctl.agent.definition.params import PARAM_TYPES, type_matches
from procctl.agent.definition.step_builders import StepBuilders
from procctl.agent.errors import DefinitionError, Problem


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
        position = TOML_POSITION.search(message)
        line = int(position.group(1)) if position else None
        text = TOML_POSITION.sub("", message).strip()
        raise DefinitionError(
            [Problem(f"TOML syntax error: {text}", file=file, line=line,
                     hint="fix the TOML syntax at that line")]
        ) from None
    builder = _Builder(source, file, children or DiskChildren.beside(file), parse_definition)
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


class _Builder(StepBuilders):
    """The whole file: [process], its params, and the steps."""

    def build(self, data: dict[str, Any]) -> Definition | None:
        for key in data:
            if key not in ("process", "steps"):
                self.problem(f"unknown top-level table {key!r}",
                             line=self.line_of(rf"^\s*\[*{re.escape(key)}\b"),
                             hint=did_you_mean(key, ["process", "steps"])
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
                             hint=did_you_mean(key, PROCESS_FIELDS))
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
                         hint=did_you_mean(str(on_crash), ON_CRASH)
                         or "fail (the default), restart or hold")
            on_crash = "fail"
        pool = process.get("pool")
        if pool is not None and (not isinstance(pool, str) or POOL_NAME.fullmatch(pool) is None):
            self.problem(f"pool {pool!r} is not a pool name: 1 to 64 letters, digits, "
                         "'-', '_' or '.'", line=self.line_of(r"^\s*pool\s*="),
                         hint='name the agents\' pool, as their `pool` setting does: '
                              'pool = "build-hosts"')
            pool = None
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
            source=self.source, sha256=sha, file=self.file, on_crash=str(on_crash), pool=pool,
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
            if not IDENTIFIER.match(name):
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
                                 hint=did_you_mean(key, PARAM_FIELDS))
            kind = decl.get("type", "any")
            if kind not in PARAM_TYPES:
                self.problem(f"param {name!r} has unknown type {kind!r}", line=line,
                             hint=did_you_mean(str(kind), PARAM_TYPES)
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
