"""Which variables and step results each checkpoint must store.

A value is stored when some step that can run after the checkpoint reads it: the
checkpoint's own `recover` block, the rest of its block, the whole of every enclosing
loop (later iterations: the back edge; a while's condition), scope (its catch and
finally) and inclusive step (its later branches), and the rest of every enclosing
block. A `scheduled_resume` re-runs steps after the checkpoint, which this already
covers. The analysis ignores reassignment, so it may keep a value that a later step
overwrites before reading; it never drops one that could be read.
"""

from __future__ import annotations

from typing import TypeGuard, assert_never

from procctl.agent.definition.model import (
    AnyStep,
    CallStep,
    CheckpointStep,
    Definition,
    ForeachStep,
    IfStep,
    InclusiveStep,
    IntermediateReturnStep,
    Liveness,
    ParallelStep,
    ReturnStep,
    ScheduledResumeStep,
    ScopeStep,
    SetStep,
    SignalStep,
    SwitchStep,
    TaskStep,
    ThrowStep,
    WhileStep,
    steps_within,
)
from procctl.agent.expressions import BUILTIN_NAMES

_Enclosing = tuple[tuple[AnyStep, tuple[AnyStep, ...], int], ...]


def stores_snapshot(step: AnyStep) -> TypeGuard[CheckpointStep | CallStep]:
    """Whether the instance can pause at this step with a snapshot to resume from: a
    checkpoint, or a call (it pauses with its child). Such a step gets a Liveness."""
    match step:
        case CheckpointStep() | CallStep():
            return True
        case (TaskStep() | SetStep() | IfStep() | ForeachStep() | SwitchStep()
              | InclusiveStep() | ParallelStep() | WhileStep() | ScopeStep()
              | IntermediateReturnStep() | ReturnStep() | ThrowStep()
              | ScheduledResumeStep() | SignalStep()):
            return False
        case _:
            assert_never(step)


def compute_liveness(definition: Definition,
                     reached: dict[str, tuple[frozenset[str], frozenset[str]]] | None = None,
                     ) -> dict[str, Liveness]:
    """Per checkpoint, what its snapshot keeps. `reached` (from the checks) narrows it to
    the variables and results that can exist by then: a loop variable read after a
    checkpoint that stands before the loop is not something it could store."""
    found: dict[str, Liveness] = {}

    def visit(block: tuple[AnyStep, ...], enclosing: _Enclosing) -> None:
        for index, step in enumerate(block):
            if stores_snapshot(step):
                live = _live_after(step, block, index, enclosing)
                if reached is not None and step.id in reached:
                    variables, results = reached[step.id]
                    live = Liveness(live.variables & variables, live.results & results,
                                    live.all_results)
                found[step.id] = live
            for _, inner in step.blocks():
                visit(inner, (*enclosing, (step, block, index)))

    visit(definition.steps, ())
    return found


def _live_after(checkpoint: CheckpointStep | CallStep, block: tuple[AnyStep, ...], index: int,
                enclosing: _Enclosing) -> Liveness:
    recover = checkpoint.recover if isinstance(checkpoint, CheckpointStep) else ()
    later: list[AnyStep] = [*recover, *block[index + 1:]]
    for owner, parent, owner_index in reversed(enclosing):
        match owner:
            case ForeachStep():
                later.extend(owner.body)  # its items are in the frame, not read again
            case WhileStep() | ScopeStep() | InclusiveStep():
                # The owner's blocks can run again or next (a loop's later iterations and
                # a while's condition; a scope's catch and finally; an inclusive step's
                # later branches): count everything in it as later.
                later.append(owner)
            case (IfStep() | SwitchStep() | ParallelStep() | CheckpointStep() | TaskStep()
                  | SetStep() | CallStep() | IntermediateReturnStep() | ReturnStep()
                  | ThrowStep() | ScheduledResumeStep() | SignalStep()):
                pass  # only the rest of the enclosing block runs after it
            case _:
                assert_never(owner)
        later.extend(parent[owner_index + 1:])
    variables: set[str] = set()
    results: set[str] = set()
    dynamic = False
    for step in steps_within(later):
        variables |= step.reads()
        for expression in step.expressions():
            results |= expression.results_read
            dynamic = dynamic or expression.results_dynamic
    # The checkpoint's own result is rebuilt when it resumes; it is never stored.
    results.discard(checkpoint.id)
    return Liveness(frozenset(variables - BUILTIN_NAMES), frozenset(results), dynamic)
