"""A definition as a tree outline, which the CLI colours (`procctl graph FILE`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, assert_never

from procctl.agent.definition.graph.labels import (
    checkpoint_facts,
    resume_when,
    set_names,
)
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
    StepKindName,
    SwitchStep,
    TaskStep,
    ThrowStep,
    WhileStep,
)
from procctl.agent.durations import format_duration

#: what a line of the outline is: a step of that kind, the process (the root), or a
#: branch or block heading
NodeKind = StepKindName | Literal["process", "block"]


@dataclass(frozen=True)
class TreeNode:
    """One line of the outline: `label` (coloured by `kind` in a terminal), `detail`
    (already punctuated, e.g. " (log)" or ": total > 0"), then `facts` as `key value`
    pairs, and the lines nested under it. `kind` is a step kind, "process" for the root
    or "block" for a branch or block heading (then, else, case ..., do, catch ...)."""

    kind: NodeKind
    label: str
    detail: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    children: tuple[TreeNode, ...] = ()

    def text(self) -> str:
        """The line as plain text."""
        facts = "".join(f"  {key} {value}" for key, value in self.facts)
        return f"{self.label}{self.detail}{facts}"

    def lines(self, indent: str = "") -> list[str]:
        """The whole outline as plain text, two spaces a level."""
        found = [indent + self.text()]
        for child in self.children:
            found += child.lines(indent + "  ")
        return found


def _block(kind_label: str, steps: tuple[AnyStep, ...], definition: Definition,
           detail: str = "") -> TreeNode:
    return TreeNode("block", kind_label, detail, (),
                    tuple(_tree_step(s, definition) for s in steps))


def _tree_step(step: AnyStep, definition: Definition) -> TreeNode:
    label = f"{step.kind} {step.id}"
    match step:
        case TaskStep():
            facts: list[tuple[str, str]] = []
            if step.timeout is not None:
                facts.append(("timeout", format_duration(step.timeout)))
            if step.retry.attempts > 1:
                facts.append(("attempts", str(step.retry.attempts)))
            return TreeNode("task", label, f" ({step.task})", tuple(facts))
        case SetStep():
            return TreeNode("set", label, f": {set_names(step)}")
        case IfStep():
            blocks = [_block("then", step.then, definition)]
            if step.else_:
                blocks.append(_block("else", step.else_, definition))
            return TreeNode("if", label, f": {step.condition.source}", (), tuple(blocks))
        case SwitchStep() | InclusiveStep() | ParallelStep():
            return _branching(step, label, definition)
        case ForeachStep():
            index = f" (index {step.index_var})" if step.index_var else ""
            return TreeNode("foreach", label,
                            f": {step.item_var} in {step.items.source}{index}",
                            (), tuple(_tree_step(s, definition) for s in step.body))
        case WhileStep():
            index = f" (index {step.index_var})" if step.index_var else ""
            return TreeNode("while", label, f": {step.condition.source}{index}",
                            (("at most", f"{step.max_iterations} times"),),
                            tuple(_tree_step(s, definition) for s in step.body))
        case ScopeStep():
            blocks = [_block("do", step.body, definition)]
            if step.catch is not None:
                blocks.append(_block("catch", step.catch, definition, f" ({step.error_as})"))
            if step.finally_:
                blocks.append(_block("finally", step.finally_, definition))
            return TreeNode("scope", label, "", (), tuple(blocks))
        case CheckpointStep():
            blocks = []
            if step.commit:
                blocks.append(_block("commit", step.commit, definition))
            if step.recover:
                blocks.append(_block("recover", step.recover, definition))
            return TreeNode("checkpoint", label, " (continue)" if step.continue_ else "",
                            checkpoint_facts(definition, step), tuple(blocks))
        case CallStep():
            return TreeNode("call", label, f": {step.file} (process {step.child.name})")
        case IntermediateReturnStep() | ReturnStep():
            return TreeNode(step.kind, label)
        case ThrowStep():
            return TreeNode("throw", label, f": {step.message.source}")
        case ScheduledResumeStep():
            limit = ((("at most", f"{step.max_iterations} times"),)
                     if step.max_iterations is not None else ())
            return TreeNode("scheduled_resume", label, f": {resume_when(step)}", limit)
        case SignalStep():
            return TreeNode("signal", label, f": to {step.correlation_id.source}")
        case _:
            assert_never(step)


def _branching(step: SwitchStep | InclusiveStep | ParallelStep, label: str,
               definition: Definition) -> TreeNode:
    """A switch's cases (and default), or an inclusive or parallel step's branches."""
    detail = ""
    if isinstance(step, ParallelStep):
        detail = (f" (at most {step.max_concurrency} at once)"
                  if step.max_concurrency else " (all at once)")
    heading = "case" if isinstance(step, SwitchStep) else "branch"
    children = []
    for branch in step.branches:
        if branch.when is None and isinstance(step, SwitchStep):
            if branch.steps:
                children.append(_block("default", branch.steps, definition))
            continue
        when = f": {branch.when.source}" if branch.when is not None else ""
        children.append(_block(f"{heading} {branch.name}", branch.steps, definition, when))
    return TreeNode(step.kind, label, detail, (), tuple(children))


def tree(definition: Definition) -> TreeNode:
    """The definition as an outline: the process, then its steps, nested as in the file."""
    version = f" (version {definition.version})" if definition.version else ""
    facts = ((("params", ", ".join(p.name for p in definition.params)),)
             if definition.params else ())
    return TreeNode("process", f"process {definition.name}", version, facts,
                    tuple(_tree_step(step, definition) for step in definition.steps))
