"""A definition as a Mermaid flowchart (`procctl graph FILE --format mermaid`).

The flowchart follows execution order: every step is a node, and an edge goes from a
step to each step that can run right after it. Decisions fan out with labelled edges
and their branches join again at the next step; a `return` leads to the end of what it
ends (the process, a loop iteration, a scope block, a parallel branch, a checkpoint's
commit or recover block); a `throw` leads to the nearest enclosing `catch`, else to the
failure end; a `scheduled_resume` leads (dotted) back to the checkpoints it can resume
from. Node ids are generated (`n0`, `n1`, ...), so no step id can break the syntax.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import assert_never

from procctl.agent.definition.graph.labels import (
    branch_label,
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
    SwitchStep,
    TaskStep,
    ThrowStep,
    WhileStep,
)

START = "n_start"
END = "n_end"
FAILED = "n_failed"

#: class name -> Mermaid style, for the nodes that get a colour
CLASS_STYLES = {
    "checkpoint": "fill:#fff3c4,stroke:#b7791f,stroke-width:2px,color:#000",
    "pause": "fill:#fde9c9,stroke:#b7791f,color:#000",
    "decision": "fill:#e8f0fe,stroke:#3b6fd8,color:#000",
    "terminal": "fill:#e6f4ea,stroke:#2f855a,color:#000",
    "failure": "fill:#fde2e1,stroke:#c53030,color:#000",
}


def mermaid_text(text: str) -> str:
    """Text made safe inside a quoted Mermaid label: entity codes for the characters that
    end a string or could be read as HTML, `<br>` for line breaks."""
    text = text.replace("#", "#35;")  # first: the codes below start with '#'
    for char, code in (('"', "#quot;"), ("&", "#38;"), ("<", "#60;"), (">", "#62;"),
                       ("`", "#96;"), ("|", "#124;")):
        text = text.replace(char, code)
    return text.replace("\r\n", "\n").replace("\n", "<br>")


@dataclass(frozen=True)
class _Exit:
    """An edge waiting for its target: from `node`, with a label, and the checkpoints a
    `scheduled_resume` reached this way would resume from."""

    node: str
    label: str | None = None
    dotted: bool = False
    checkpoints: frozenset[str] = frozenset()


@dataclass
class _Context:
    """Where `return` and `throw` lead inside the block being drawn."""

    returns: list[_Exit] = field(default_factory=list)
    throws: list[_Exit] = field(default_factory=list)


def _reached(exits: Iterable[_Exit]) -> frozenset[str]:
    found: frozenset[str] = frozenset()
    for item in exits:
        found |= item.checkpoints
    return found


def _relabel(exits: list[_Exit], label: str) -> list[_Exit]:
    return [item if item.label else _Exit(item.node, label, item.dotted, item.checkpoints)
            for item in exits]


# Shapes: (opening, closing) around the quoted label.
_SHAPES = {
    "rect": ("[", "]"),
    "round": ("(", ")"),
    "stadium": ("([", "])"),
    "subroutine": ("[[", "]]"),
    "circle": ("((", "))"),
    "double": ("(((", ")))"),
    "rhombus": ("{", "}"),
    "hexagon": ("{{", "}}"),
    "lean": ("[/", "/]"),
    "lean_left": ("[\\", "\\]"),
    "fork": ("[/", "\\]"),
    "join": ("[\\", "/]"),
    "flag": (">", "]"),
}


class _Flowchart:
    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self.body: list[str] = []
        self.edges: list[str] = []
        self.classes: dict[str, list[str]] = {}
        self.depth = 1
        self.count = 0
        self.subgraphs = 0
        #: step id -> the id of the node (or, for a scope, the subgraph) that stands for it
        self.step_nodes: dict[str, str] = {}

    # --- output -------------------------------------------------------------------

    def node(self, shape: str, lines: Iterable[str], css: str | None = None,
             node_id: str | None = None) -> str:
        if node_id is None:
            node_id = f"n{self.count}"
            self.count += 1
        opening, closing = _SHAPES[shape]
        label = "<br>".join(mermaid_text(line) for line in lines)
        self.body.append(f"{'    ' * self.depth}{node_id}{opening}\"{label}\"{closing}")
        if css:
            self.classes.setdefault(css, []).append(node_id)
        return node_id

    def open_subgraph(self, graph_id: str, title: str) -> None:
        self.body.append(f"{'    ' * self.depth}subgraph {graph_id} [\"{mermaid_text(title)}\"]")
        self.depth += 1

    def close_subgraph(self) -> None:
        self.depth -= 1
        self.body.append(f"{'    ' * self.depth}end")

    def edge(self, source: str, target: str, label: str | None = None,
             dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        text = f'|"{mermaid_text(label)}"|' if label else ""
        self.edges.append(f"    {source} {arrow}{text} {target}")

    def connect(self, exits: Iterable[_Exit], target: str) -> None:
        for item in exits:
            self.edge(item.node, target, item.label, item.dotted)

    def text(self) -> str:
        lines = ["flowchart TD", *self.body, *self.edges]
        for css, style in CLASS_STYLES.items():
            if css in self.classes:
                lines.append(f"    classDef {css} {style}")
                lines.append(f"    class {','.join(self.classes[css])} {css}")
        return "\n".join(lines) + "\n"

    # --- the process --------------------------------------------------------------

    def draw(self) -> str:
        self.node("circle", ["start"], "terminal", node_id=START)
        context = _Context()
        exits = self.block(self.definition.steps, [_Exit(START)], context)
        self.node("double", ["end"], "terminal", node_id=END)
        self.connect([*exits, *context.returns], END)
        if context.throws:
            self.node("double", ["failed"], "failure", node_id=FAILED)
            self.connect(context.throws, FAILED)
        return self.text()

    def block(self, steps: tuple[AnyStep, ...], entries: list[_Exit],
              context: _Context) -> list[_Exit]:
        """Draw a block; `entries` lead to its first step; returns what leaves its end."""
        for step in steps:
            entries = self.step(step, entries, context)
        return entries

    def simple(self, shape: str, lines: list[str], entries: list[_Exit],
               css: str | None = None) -> list[_Exit]:
        node = self.node(shape, lines, css)
        self.connect(entries, node)
        return [_Exit(node, checkpoints=_reached(entries))]

    def step(self, step: AnyStep, entries: list[_Exit], context: _Context) -> list[_Exit]:
        # A step's own node is the first one it draws; a drawn scope is its subgraph.
        nodes, graphs = self.count, self.subgraphs
        exits = self.draw_step(step, entries, context)
        if isinstance(step, ScopeStep) and self.subgraphs > graphs:
            self.step_nodes.setdefault(step.id, f"s{graphs}")
        elif self.count > nodes:
            self.step_nodes.setdefault(step.id, f"n{nodes}")
        return exits

    def draw_step(self, step: AnyStep, entries: list[_Exit],
                  context: _Context) -> list[_Exit]:
        match step:
            case TaskStep():
                return self.simple("rect", [f"task {step.id} ({step.task})"], entries)
            case SetStep():
                return self.simple("rect", [f"set {step.id}: {set_names(step)}"], entries)
            case IfStep():
                return self.if_(step, entries, context)
            case SwitchStep():
                return self.switch(step, entries, context)
            case InclusiveStep():
                return self.inclusive(step, entries, context)
            case ParallelStep():
                return self.parallel(step, entries, context)
            case ForeachStep():
                item = step.item_var
                return self.loop(entries, context, [
                    f"foreach {step.id}", f"{item} in {step.items.source}"
                    + (f" (index {step.index_var})" if step.index_var else "")],
                    f"each {item}", f"next {item}", step.body)
            case WhileStep():
                condition = step.condition.source
                return self.loop(entries, context, [
                    f"while {step.id}: {condition}", f"at most {step.max_iterations} times"
                    + (f" (index {step.index_var})" if step.index_var else "")],
                    condition, f"while {condition}", step.body)
            case ScopeStep():
                return self.scope(step, entries, context)
            case CheckpointStep():
                return self.checkpoint(step, entries, context)
            case CallStep():
                return self.simple("subroutine", [f"call {step.id}", f"{step.file} "
                                                  f"(process {step.child.name})"], entries)
            case IntermediateReturnStep():
                return self.simple("flag", [f"intermediate_return {step.id}",
                                            "answers run --wait, goes on"], entries)
            case ReturnStep():
                node = self.node("stadium", [f"return {step.id}"], "terminal")
                self.connect(entries, node)
                context.returns.append(_Exit(node, checkpoints=_reached(entries)))
                return []
            case ThrowStep():
                node = self.node("stadium", [f"throw {step.id}", step.message.source],
                                 "failure")
                self.connect(entries, node)
                context.throws.append(_Exit(node, "throw"))
                return []
            case ScheduledResumeStep():
                return self.scheduled_resume(step, entries)
            case SignalStep():
                return self.simple("round", [f"signal {step.id}",
                                             f"to {step.correlation_id.source}"], entries)
            case _:
                assert_never(step)

    def scheduled_resume(self, step: ScheduledResumeStep, entries: list[_Exit]) -> list[_Exit]:
        """A pause node, with a dotted edge back to each checkpoint it can resume from."""
        limit = (f", at most {step.max_iterations} times"
                 if step.max_iterations is not None else "")
        node = self.node("lean_left", [f"scheduled_resume {step.id}",
                                       f"pause, resume {resume_when(step)}{limit}"], "pause")
        self.connect(entries, node)
        for checkpoint in sorted(_reached(entries), key=lambda n: int(n[1:])):
            self.edge(node, checkpoint, "resume from checkpoint", dotted=True)
        return []

    # --- decisions ------------------------------------------------------------------

    def if_(self, step: IfStep, entries: list[_Exit], context: _Context) -> list[_Exit]:
        node = self.node("rhombus", [f"if {step.id}"], "decision")
        self.connect(entries, node)
        reached = _reached(entries)
        exits = self.block(step.then, [_Exit(node, step.condition.source,
                                             checkpoints=reached)], context)
        exits += self.block(step.else_, [_Exit(node, "else", checkpoints=reached)], context)
        return exits

    def switch(self, step: SwitchStep, entries: list[_Exit], context: _Context) -> list[_Exit]:
        node = self.node("rhombus", [f"switch {step.id}"], "decision")
        self.connect(entries, node)
        reached = _reached(entries)
        exits: list[_Exit] = []
        for branch in step.branches:
            exits += self.block(branch.steps, [_Exit(node, branch_label(branch),
                                                     checkpoints=reached)], context)
        return exits

    def inclusive(self, step: InclusiveStep, entries: list[_Exit],
                  context: _Context) -> list[_Exit]:
        node = self.node("rhombus", [f"inclusive {step.id}", "every branch that holds, in order"],
                         "decision")
        self.connect(entries, node)
        reached = _reached(entries)
        exits: list[_Exit] = [_Exit(node, "none holds", checkpoints=reached)]
        for branch in step.branches:
            exits += self.block(branch.steps, [_Exit(node, branch_label(branch),
                                                     checkpoints=reached)], context)
        join = self.node("rhombus", [f"end of {step.id}"], "decision")
        self.connect(exits, join)
        return [_Exit(join, checkpoints=_reached(exits))]

    def parallel(self, step: ParallelStep, entries: list[_Exit],
                 context: _Context) -> list[_Exit]:
        limit = (f"at most {step.max_concurrency} at once" if step.max_concurrency
                 else "all at once")
        fork = self.node("fork", [f"parallel {step.id}", limit])
        self.connect(entries, fork)
        reached = _reached(entries)
        ends: list[_Exit] = []
        for branch in step.branches:
            inner = _Context(throws=context.throws)
            ends += self.block(branch.steps, [_Exit(fork, branch.name, checkpoints=reached)],
                               inner)
            ends += inner.returns
        join = self.node("join", [f"join {step.id}"])
        self.connect(ends, join)
        return [_Exit(join, checkpoints=reached)]

    # --- loops and blocks -------------------------------------------------------------

    def loop(self, entries: list[_Exit], context: _Context, lines: list[str],
             enter: str, again: str, body: tuple[AnyStep, ...]) -> list[_Exit]:
        head = self.node("hexagon", lines)
        self.connect(entries, head)
        reached = _reached(entries)
        inner = _Context(throws=context.throws)
        ends = self.block(body, [_Exit(head, enter, checkpoints=reached)], inner)
        ends += inner.returns
        self.connect(_relabel(ends, again), head)
        return [_Exit(head, "done", checkpoints=reached | _reached(ends))]

    def scope(self, step: ScopeStep, entries: list[_Exit], context: _Context) -> list[_Exit]:
        if not (step.body or step.catch or step.finally_):
            return self.simple("rect", [f"scope {step.id} (empty)"], entries)
        graph = f"s{self.subgraphs}"
        self.subgraphs += 1
        self.open_subgraph(graph, f"scope {step.id}")
        reached = _reached(entries)
        # Without a catch, a throw in `do` fails the scope (after `finally`) as usual.
        do = _Context(throws=[] if step.catch is not None else context.throws)
        exits = entries
        if step.body:
            self.open_subgraph(f"{graph}_do", "do")
            exits = self.block(step.body, entries, do)
            self.close_subgraph()
        exits = [*exits, *do.returns]
        if step.catch is not None:
            # Any failure in `do` leads to catch: an edge from the whole `do` box.
            handlers = [_Exit(f"{graph}_do", f"error as {step.error_as}", dotted=True,
                              checkpoints=reached)] if step.body else []
            handlers += do.throws
            catch = _Context(throws=context.throws)
            if step.catch:
                self.open_subgraph(f"{graph}_catch", f"catch ({step.error_as})")
                handlers = self.block(step.catch, handlers, catch)
                self.close_subgraph()
            exits += [*handlers, *catch.returns]
        if step.finally_:
            final = _Context(throws=context.throws)
            self.open_subgraph(f"{graph}_finally", "finally")
            exits = self.block(step.finally_, exits, final)
            self.close_subgraph()
            exits += final.returns
        self.close_subgraph()
        return exits

    def checkpoint(self, step: CheckpointStep, entries: list[_Exit],
                   context: _Context) -> list[_Exit]:
        lines = [f"checkpoint {step.id}"]
        if step.continue_:
            lines.append("continues (no pause)")
        lines += [f"{key}: {value}" for key, value in checkpoint_facts(self.definition, step)]
        node = self.node("lean", lines, "checkpoint")
        self.connect(entries, node)
        here = frozenset({node})
        # A return inside commit or recover ends that block; a throw fails as usual.
        commit = _Context(throws=context.throws)
        exits = self.block(step.commit, [_Exit(node, "commit" if step.commit else None,
                                               checkpoints=here)], commit)
        exits += commit.returns
        if not step.continue_:
            exits = _relabel(exits, "resumed")
        if step.recover:
            recover = _Context(throws=context.throws)
            exits += self.block(step.recover, [_Exit(node, "recover after a crash",
                                                     dotted=True, checkpoints=here)], recover)
            exits += recover.returns
        return exits


def mermaid(definition: Definition) -> str:
    """A Mermaid `flowchart TD` of the definition, ending with a newline."""
    return _Flowchart(definition).draw()


def mermaid_with_nodes(definition: Definition) -> tuple[str, dict[str, str]]:
    """`mermaid(definition)` and, for each step id, the id of its node in that text (a
    scope's is its subgraph), so a caller can mark a step with a `class` line."""
    chart = _Flowchart(definition)
    text = chart.draw()
    return text, chart.step_nodes
