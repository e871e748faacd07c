"""Checks across steps: unique ids, variables read before any step sets them, results refs."""

from __future__ import annotations

from difflib import get_close_matches

from procctl.agent.definition.model import Definition, ForeachStep, Step
from procctl.agent.errors import Problem
from procctl.agent.expressions import BUILTIN_NAMES


def check_definition(definition: Definition) -> list[Problem]:
    problems: list[Problem] = []
    file = definition.file

    def report(step: Step, message: str, hint: str | None = None) -> None:
        problems.append(Problem(message, file=file, line=step.line, step_path=step.path,
                                step_id=step.id, hint=hint))

    first_seen: dict[str, Step] = {}
    for step in definition.all_steps():
        if step.id in first_seen:
            other = first_seen[step.id]
            where = f"line {other.line}" if other.line else other.path
            report(step, f"duplicate step id {step.id!r} (first used at {where})",
                   "give every step its own id")
        else:
            first_seen[step.id] = step

    seen_ids: set[str] = set()
    params = {spec.name for spec in definition.params}

    def walk(block: tuple[Step, ...], defined: set[str]) -> set[str]:
        """Check a block; return the names defined after it on some path."""
        for step in block:
            for name in sorted(step.reads() - defined - BUILTIN_NAMES):
                close = get_close_matches(name, sorted(defined), n=1)
                report(step, f"reads variable {name!r}, which no param or earlier step sets",
                       f"did you mean {close[0]!r}?" if close else
                       "declare it under [process.params] or set it in an earlier set step")
            for expression in step.expressions():
                for ref in sorted(expression.results_read - seen_ids):
                    if ref in first_seen:
                        report(step, f"reads results[{ref!r}], but that step runs later",
                               "a step can read the results of steps before it")
                    else:
                        close = get_close_matches(ref, sorted(first_seen), n=1)
                        report(step, f"reads results[{ref!r}], but no step has that id",
                               f"did you mean {close[0]!r}?" if close else None)
            seen_ids.add(step.id)
            after = set(defined)
            for _, inner in step.blocks():
                inner_defined = set(defined)
                if isinstance(step, ForeachStep):
                    # A later iteration sees what earlier ones set (the loop's back edge).
                    inner_defined |= step.loop_vars() | _sets_within(inner)
                after |= walk(inner, inner_defined) - (
                    step.loop_vars() if isinstance(step, ForeachStep) else set())
            defined = after | step.sets()
        return defined

    walk(definition.steps, set(params))
    return problems


def _sets_within(block: tuple[Step, ...]) -> set[str]:
    names: set[str] = set()
    for step in block:
        names |= step.sets()
        for _, inner in step.blocks():
            names |= _sets_within(inner)
    return names
