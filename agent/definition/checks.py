"""Checks across steps: unique ids, variables read before any step sets them, results refs."""

from __future__ import annotations

from contextlib import suppress
from difflib import get_close_matches
from typing import Protocol, assert_never

from procctl.agent.definition.liveness import stores_snapshot
from procctl.agent.definition.model import (
    AnyStep,
    CallStep,
    CheckpointStep,
    Definition,
    ForeachStep,
    IfStep,
    InclusiveStep,
    IntermediateReturnStep,
    ParallelStep,
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
    steps_within,
)
from procctl.agent.definition.payload_fields import payload_fields_read
from procctl.agent.errors import ExpressionError, Problem
from procctl.agent.expressions import BUILTIN_NAMES, compile_template, iter_templates

#: a name no variable can have: "a checkpoint was passed" flows like a variable
CHECKPOINT_REACHED = "\0checkpoint"


class Report(Protocol):
    def __call__(self, step: Step, message: str, hint: str | None = None,
                 severity: str = "error") -> None: ...


def check_definition(definition: Definition,
                     reached: dict[str, tuple[frozenset[str], frozenset[str]]] | None = None,
                     *, unknown_names: frozenset[str] = frozenset(),
                     unknown_ids: frozenset[str] = frozenset()) -> list[Problem]:
    """Every finding across steps. With `reached`, also note for each checkpoint the
    variables and step results that can exist when it is reached (on some path).
    `unknown_names` and `unknown_ids` (what steps left out of the model could set, and
    their ids) are never reported as unset or missing."""
    problems: list[Problem] = []
    file = definition.file

    def report(step: Step, message: str, hint: str | None = None,
               severity: str = "error") -> None:
        problems.append(Problem(message, file=file, line=step.line, step_path=step.path,
                                step_id=step.id, hint=hint, severity=severity))

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
    #: a variable set only inside parallel branches -> that parallel step's id
    branch_local: dict[str, str] = {}
    #: step ids in the other branches of the branch being checked -> the branching step
    elsewhere: dict[str, Step] = {}

    def check_step_reads(step: AnyStep, must: set[str], may: set[str]) -> None:
        if isinstance(step, WhileStep):  # its condition sees its own index variable
            must, may = must | step.loop_vars(), may | step.loop_vars()
        if stores_snapshot(step) and reached is not None:
            reached[step.id] = (frozenset(may), frozenset(seen_ids))
        for name in sorted(_unset_reads(step, may) - BUILTIN_NAMES - unknown_names):
            if name in branch_local:
                owner = branch_local[name]
                report(step, f"reads variable {name!r}, which is set only inside a branch "
                       f"of parallel step {owner!r}; a branch's variables stay in it",
                       f"return the value from the branch and read results[{owner!r}]"
                       "['<branch name>']")
                continue
            close = get_close_matches(name, sorted(may - {CHECKPOINT_REACHED}), n=1)
            report(step, f"reads variable {name!r}, which no param or earlier step sets",
                   f"did you mean {close[0]!r}?" if close else
                   "declare it under [process.params] or set it in an earlier set step")
        for name in sorted(_unset_reads(step, must) - _unset_reads(step, may)
                           - BUILTIN_NAMES - unknown_names):
            report(step, f"may read variable {name!r} before it is set: only some paths "
                   "to this step set it", "set it before the branch or loop that sets it, "
                   "or on every path", severity="warning")
        if isinstance(step, ScheduledResumeStep):
            if CHECKPOINT_REACHED not in may:
                report(step, "scheduled_resume has no checkpoint before it to resume from",
                       "add a checkpoint step (continue = true) before it")
            elif CHECKPOINT_REACHED not in must:
                report(step, "scheduled_resume may run before any checkpoint: only some "
                       "paths to it pass one", "put a checkpoint on every path to it",
                       severity="warning")
        for expression in step.expressions():
            for ref in sorted(expression.results_read - seen_ids - unknown_ids):
                if ref in elsewhere:
                    branching = elsewhere[ref]
                    report(step, f"reads results[{ref!r}], but step {ref!r} is in another "
                           f"branch of {branching.id!r}: it has not run on this path",
                           f"read it after the {branching.kind} step" + (
                               ", when every branch has run"
                               if isinstance(branching, ParallelStep)
                               else ", where it may have run"))
                elif ref in first_seen:
                    report(step, f"reads results[{ref!r}], but that step runs later",
                           "a step can read the results of steps before it")
                else:
                    close = get_close_matches(ref, sorted(first_seen), n=1)
                    report(step, f"reads results[{ref!r}], but no step has that id",
                           f"did you mean {close[0]!r}?" if close else None)

    def walk(block: tuple[AnyStep, ...], must: set[str], may: set[str],
             ) -> tuple[set[str], set[str], bool]:
        """Check a block entered with `must` (set on every path) and `may` (on some);
        return them after it, and whether the block always ends early (return, throw)."""
        must, may = set(must), set(may)
        ended_by: Step | None = None
        for step in block:
            if ended_by is not None:
                report(step, f"can never run: {ended_by.kind} step {ended_by.id!r} before "
                       "it always ends this block", "remove it or move it before "
                       f"{ended_by.id!r}", severity="warning")
                break
            check_step_reads(step, must, may)
            seen_ids.add(step.id)
            must, may, ends = flow_through(step, must, may)
            if ends:
                ended_by = step
        return must, may, ended_by is not None

    def walk_branches(step: Step, must: set[str], may: set[str],
                      ) -> list[tuple[set[str], set[str], bool]]:
        """Walk each branch of an if, switch or parallel step as the only one that ran:
        no branch sees the results of another."""
        before = set(seen_ids)
        blocks = [inner for _, inner in step.blocks()]
        ids = [{s.id for s in steps_within(inner)} for inner in blocks]
        outcomes = []
        for index, inner in enumerate(blocks):
            others = set().union(*(ids[:index] + ids[index + 1:])) - ids[index]
            saved = dict(elsewhere)
            elsewhere.update(dict.fromkeys(others, step))
            seen_ids.clear()
            seen_ids.update(before)
            outcomes.append(walk(inner, must, may))
            elsewhere.clear()
            elsewhere.update(saved)
        seen_ids.update(before.union(*ids))
        return outcomes

    def flow_through(step: AnyStep, must: set[str], may: set[str],
                     ) -> tuple[set[str], set[str], bool]:
        """What is set after `step`, and whether it always ends its block."""
        match step:
            case ReturnStep() | ThrowStep():
                return must, may, True
            case IfStep() | SwitchStep():
                outcomes = walk_branches(step, must, may)
                going_on = [(m, y) for m, y, ends in outcomes if not ends]
                new_may = may.union(*(y for _, y, _ in outcomes))
                if not going_on:
                    return must, new_may, True
                return must | set.intersection(*(m for m, _ in going_on)), new_may, False
            case InclusiveStep():
                outcomes = [walk(inner, must, may) for _, inner in step.blocks()]
                return must, may.union(*(y for _, y, _ in outcomes)), False
            case ParallelStep():
                for _, branch_may, _ in walk_branches(step, must, may):
                    # A branch's variables stay in the branch.
                    branch_local.update(dict.fromkeys(branch_may - may, step.id))
                return must, may, False
            case ForeachStep() | WhileStep():
                loop_vars = step.loop_vars()
                # A later iteration sees what earlier ones set (the loop's back edge).
                set_in_body = {name for inner in steps_within(step.body)
                               for name in inner.sets()}
                _, body_may, _ = walk(step.body, must | loop_vars,
                                      may | loop_vars | set_in_body)
                return must, may | (body_may - loop_vars), False
            case ScopeStep():
                do_must, do_may, _ = walk(step.body, must, may)
                ends_must, ends_may = [do_must], do_may
                if step.catch is not None:
                    error = {step.error_as}
                    catch_must, catch_may, _ = walk(step.catch, must | error, do_may | error)
                    ends_must.append(catch_must - error)
                    ends_may = ends_may | (catch_may - error)
                final_must, final_may, _ = walk(step.finally_, must, ends_may)
                after_must = set.intersection(*ends_must) | (final_must - must)
                return after_must | must, ends_may | final_may, False
            case CheckpointStep():
                inner_may = set(may)
                for _, inner in step.blocks():
                    inner_may |= walk(inner, must, may)[1]
                reached = {CHECKPOINT_REACHED}
                return must | reached, inner_may | reached, False
            case (TaskStep() | SetStep() | CallStep() | IntermediateReturnStep()
                  | ScheduledResumeStep() | SignalStep()):
                return must | step.sets(), may | step.sets(), False
            case _:
                assert_never(step)

    walk(definition.steps, set(params), set(params))
    _check_placement(definition.steps, report)
    _check_payload_reads(definition, report)
    return problems


def _check_payload_reads(definition: Definition, report: Report) -> None:
    """A later step that reads (without a default) a payload field the checkpoint's
    `expects` does not declare: the door lets a signal without it through (often a
    misspelt field)."""
    for step in definition.all_steps():
        if not isinstance(step, CheckpointStep) or step.expects is None:
            continue
        declared = [field.name for field in step.expects]
        for found in payload_fields_read(definition, step.id):
            if found.name in declared or found.optional:  # a default covers its absence
                continue
            close = get_close_matches(found.name, declared, n=1)
            report(step, f"a later step reads payload field {found.name!r}, which expects "
                   "does not declare: a signal without it is let through",
                   f"did you mean {close[0]!r}?" if close
                   else f'add it to expects (e.g. {found.name} = "str"), or read it with '
                   "| default(...)",
                   severity="warning")


def _pauses(step: AnyStep) -> bool:
    """Whether the instance pauses at this step (with its snapshot, or back to one)."""
    match step:
        case CheckpointStep() | ScheduledResumeStep():
            return True
        case (TaskStep() | SetStep() | IfStep() | ForeachStep() | SwitchStep()
              | InclusiveStep() | ParallelStep() | WhileStep() | ScopeStep() | CallStep()
              | IntermediateReturnStep() | ReturnStep() | ThrowStep() | SignalStep()):
            return False
        case _:
            assert_never(step)


def _check_placement(steps: tuple[AnyStep, ...], report: Report) -> None:
    """Where checkpoints and scheduled resumes may stand: not in a checkpoint's commit
    or recover block, and not in a parallel branch (a branch cannot pause)."""

    def walk(block: tuple[AnyStep, ...], in_checkpoint_block: str | None,
             in_parallel: Step | None) -> None:
        for step in block:
            pauses = _pauses(step)
            if in_checkpoint_block and pauses:
                report(step, f"a {step.kind} step cannot stand in a checkpoint's "
                       f"{in_checkpoint_block} block", "move it after the checkpoint")
            elif in_parallel is not None and pauses:
                report(step, f"a {step.kind} step cannot stand in a branch of parallel step "
                       f"{in_parallel.id!r}: a branch cannot pause while the others run",
                       "put the checkpoint before or after the parallel step")
            for name, inner in step.blocks():
                walk(inner,
                     name if isinstance(step, CheckpointStep) else in_checkpoint_block,
                     step if isinstance(step, ParallelStep) else in_parallel)

    walk(steps, None, None)


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
