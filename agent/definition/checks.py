"""Checks across steps: unique ids, variables read before any step sets them, results refs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from difflib import get_close_matches

from procctl.agent.definition.model import (
    CheckpointStep,
    Definition,
    ForeachStep,
    ScheduledResumeStep,
    SetStep,
    Step,
)
from procctl.agent.errors import ExpressionError, Problem
from procctl.agent.expressions import BUILTIN_NAMES, compile_template, iter_templates


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
            for name in sorted(_unset_reads(step, defined) - BUILTIN_NAMES):
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
    _check_placement(definition.steps, report)
    return problems


def _check_placement(steps: tuple[Step, ...], report: Callable[[Step, str, str | None], None],
                     ) -> None:
    """Where checkpoints, scheduled resumes and returns may stand."""
    seen_checkpoint = False

    def walk(block: tuple[Step, ...], in_checkpoint_block: str | None) -> None:
        nonlocal seen_checkpoint
        for step in block:
            if in_checkpoint_block and isinstance(step, CheckpointStep | ScheduledResumeStep):
                report(step, f"a {step.kind} step cannot stand in a checkpoint's "
                       f"{in_checkpoint_block} block",
                       "move it after the checkpoint")
            if isinstance(step, ScheduledResumeStep) and not seen_checkpoint:
                report(step, "scheduled_resume has no checkpoint before it to resume from",
                       "add a checkpoint step (continue = true) before it")
            if isinstance(step, CheckpointStep):
                for name, inner in step.blocks():
                    walk(inner, name)
                seen_checkpoint = True
                continue
            for _, inner in step.blocks():
                walk(inner, in_checkpoint_block)

    walk(steps, None)


def _unset_reads(step: Step, defined: set[str]) -> set[str]:
    """Names `step` reads that are not set yet. A set step's values are evaluated in order,
    so a value may read the ones before it in the same step."""
    if not isinstance(step, SetStep):
        return set(step.reads() - defined)
    missing: set[str] = set()
    known = set(defined)
    for name, raw in step.values:
        for text in iter_templates(raw):
            with suppress(ExpressionError):  # the loader reported it already
                missing |= compile_template(text).variables - known
        known.add(name)
    return missing


def _sets_within(block: tuple[Step, ...]) -> set[str]:
    names: set[str] = set()
    for step in block:
        names |= step.sets()
        for _, inner in step.blocks():
            names |= _sets_within(inner)
    return names
