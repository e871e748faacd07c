"""Drawings of a definition: a Mermaid flowchart and a tree outline.

Pure functions over the frozen model; the CLI prints them (`procctl graph FILE`).

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

from procctl.agent.definition.model import (
    Branch,
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
    Step,
    SwitchStep,
    TaskStep,
    ThrowStep,
    WhileStep,
)
from procctl.agent.durations import format_duration

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

# ---------------------------------------------------------------------------------------
# What the drawings say about a step (shared by the flowchart and the tree)


def correlation_text(step: CheckpointStep) -> str:
    """The checkpoint's correlation ID as written, or the default it gets."""
    if step.correlation_id is None:
        return f"<instance id>:{step.id}"
    return step.correlation_id.source


def ttl_text(step: CheckpointStep) -> str:
    return "none" if step.ttl is None else format_duration(step.ttl)


def stores_text(liveness: Liveness | None) -> str:
    """What a checkpoint's snapshot keeps: `a, b`, `no variables`, plus the results."""
    if liveness is None:
        return "no variables"
    text = ", ".join(sorted(liveness.variables)) or "no variables"
    if liveness.all_results:
        text += "; all results"
    elif liveness.results:
        text += "; results of " + ", ".join(sorted(liveness.results))
    return text


def checkpoint_facts(definition: Definition, step: CheckpointStep) -> tuple[tuple[str, str], ...]:
    return (("correlation", correlation_text(step)), ("ttl", ttl_text(step)),
            ("stores", stores_text(definition.liveness.get(step.id))))


def _branch_label(branch: Branch) -> str:
    if branch.when is None:
        return branch.name
    return f"{branch.name}: {branch.when.source}"


def _set_names(step: SetStep) -> str:
    return ", ".join(name for name, _ in step.values)


def _resume_when(step: ScheduledResumeStep) -> str:
    if step.after is not None:
        return f"after {format_duration(step.after)}"
    return f"at {step.at.source}" if step.at is not None else ""


# ---------------------------------------------------------------------------------------
# Mermaid


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

    def block(self, steps: tuple[Step, ...], entries: list[_Exit],
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

    def step(self, step: Step, entries: list[_Exit], context: _Context) -> list[_Exit]:
        if isinstance(step, TaskStep):
            return self.simple("rect", [f"task {step.id} ({step.task})"], entries)
        if isinstance(step, SetStep):
            return self.simple("rect", [f"set {step.id}: {_set_names(step)}"], entries)
        if isinstance(step, IfStep):
            return self.if_(step, entries, context)
        if isinstance(step, SwitchStep):
            return self.switch(step, entries, context)
        if isinstance(step, InclusiveStep):
            return self.inclusive(step, entries, context)
        if isinstance(step, ParallelStep):
            return self.parallel(step, entries, context)
        if isinstance(step, ForeachStep):
            item = step.item_var
            return self.loop(step, entries, context, [
                f"foreach {step.id}", f"{item} in {step.items.source}"
                + (f" (index {step.index_var})" if step.index_var else "")],
                f"each {item}", f"next {item}", step.body)
        if isinstance(step, WhileStep):
            condition = step.condition.source
            return self.loop(step, entries, context, [
                f"while {step.id}: {condition}", f"at most {step.max_iterations} times"
                + (f" (index {step.index_var})" if step.index_var else "")],
                condition, f"while {condition}", step.body)
        if isinstance(step, ScopeStep):
            return self.scope(step, entries, context)
        if isinstance(step, CheckpointStep):
            return self.checkpoint(step, entries, context)
        if isinstance(step, CallStep):
            return self.simple("subroutine", [f"call {step.id}", f"{step.file} "
                                              f"(process {step.child.name})"], entries)
        if isinstance(step, IntermediateReturnStep):
            return self.simple("flag", [f"intermediate_return {step.id}",
                                        "answers run --wait, goes on"], entries)
        if isinstance(step, ReturnStep):
            node = self.node("stadium", [f"return {step.id}"], "terminal")
            self.connect(entries, node)
            context.returns.append(_Exit(node, checkpoints=_reached(entries)))
            return []
        if isinstance(step, ThrowStep):
            node = self.node("stadium", [f"throw {step.id}", step.message.source], "failure")
            self.connect(entries, node)
            context.throws.append(_Exit(node, "throw"))
            return []
        if isinstance(step, ScheduledResumeStep):
            limit = (f", at most {step.max_iterations} times"
                     if step.max_iterations is not None else "")
            node = self.node("lean_left", [f"scheduled_resume {step.id}",
                                           f"pause, resume {_resume_when(step)}{limit}"],
                             "pause")
            self.connect(entries, node)
            for checkpoint in sorted(_reached(entries), key=lambda n: int(n[1:])):
                self.edge(node, checkpoint, "resume from checkpoint", dotted=True)
            return []
        if isinstance(step, SignalStep):
            return self.simple("round", [f"signal {step.id}",
                                         f"to {step.correlation_id.source}"], entries)
        return self.simple("rect", [f"{step.kind} {step.id}"], entries)  # pragma: no cover

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
            exits += self.block(branch.steps, [_Exit(node, _branch_label(branch),
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
            exits += self.block(branch.steps, [_Exit(node, _branch_label(branch),
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

    def loop(self, step: Step, entries: list[_Exit], context: _Context, lines: list[str],
             enter: str, again: str, body: tuple[Step, ...]) -> list[_Exit]:
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


# ---------------------------------------------------------------------------------------
# The tree outline


@dataclass(frozen=True)
class TreeNode:
    """One line of the outline: `label` (coloured by `kind` in a terminal), `detail`
    (already punctuated, e.g. " (log)" or ": total > 0"), then `facts` as `key value`
    pairs, and the lines nested under it. `kind` is a step kind, "process" for the root
    or "block" for a branch or block heading (then, else, case ..., do, catch ...)."""

    kind: str
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


def _block(kind_label: str, steps: tuple[Step, ...], definition: Definition,
           detail: str = "") -> TreeNode:
    return TreeNode("block", kind_label, detail, (),
                    tuple(_tree_step(s, definition) for s in steps))


def _tree_step(step: Step, definition: Definition) -> TreeNode:
    label = f"{step.kind} {step.id}"
    if isinstance(step, TaskStep):
        facts: list[tuple[str, str]] = []
        if step.timeout is not None:
            facts.append(("timeout", format_duration(step.timeout)))
        if step.retry.attempts > 1:
            facts.append(("attempts", str(step.retry.attempts)))
        return TreeNode("task", label, f" ({step.task})", tuple(facts))
    if isinstance(step, SetStep):
        return TreeNode("set", label, f": {_set_names(step)}")
    if isinstance(step, IfStep):
        blocks = [_block("then", step.then, definition)]
        if step.else_:
            blocks.append(_block("else", step.else_, definition))
        return TreeNode("if", label, f": {step.condition.source}", (), tuple(blocks))
    if isinstance(step, SwitchStep | InclusiveStep | ParallelStep):
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
    if isinstance(step, ForeachStep):
        index = f" (index {step.index_var})" if step.index_var else ""
        return TreeNode("foreach", label, f": {step.item_var} in {step.items.source}{index}",
                        (), tuple(_tree_step(s, definition) for s in step.body))
    if isinstance(step, WhileStep):
        index = f" (index {step.index_var})" if step.index_var else ""
        return TreeNode("while", label, f": {step.condition.source}{index}",
                        (("at most", f"{step.max_iterations} times"),),
                        tuple(_tree_step(s, definition) for s in step.body))
    if isinstance(step, ScopeStep):
        blocks = [_block("do", step.body, definition)]
        if step.catch is not None:
            blocks.append(_block("catch", step.catch, definition, f" ({step.error_as})"))
        if step.finally_:
            blocks.append(_block("finally", step.finally_, definition))
        return TreeNode("scope", label, "", (), tuple(blocks))
    if isinstance(step, CheckpointStep):
        blocks = []
        if step.commit:
            blocks.append(_block("commit", step.commit, definition))
        if step.recover:
            blocks.append(_block("recover", step.recover, definition))
        return TreeNode("checkpoint", label, " (continue)" if step.continue_ else "",
                        checkpoint_facts(definition, step), tuple(blocks))
    if isinstance(step, CallStep):
        return TreeNode("call", label, f": {step.file} (process {step.child.name})")
    if isinstance(step, ThrowStep):
        return TreeNode("throw", label, f": {step.message.source}")
    if isinstance(step, ScheduledResumeStep):
        limit = ((("at most", f"{step.max_iterations} times"),)
                 if step.max_iterations is not None else ())
        return TreeNode("scheduled_resume", label, f": {_resume_when(step)}", limit)
    if isinstance(step, SignalStep):
        return TreeNode("signal", label, f": to {step.correlation_id.source}")
    return TreeNode(step.kind, label)  # return, intermediate_return


def tree(definition: Definition) -> TreeNode:
    """The definition as an outline: the process, then its steps, nested as in the file."""
    version = f" (version {definition.version})" if definition.version else ""
    facts = ((("params", ", ".join(p.name for p in definition.params)),)
             if definition.params else ())
    return TreeNode("process", f"process {definition.name}", version, facts,
                    tuple(_tree_step(step, definition) for step in definition.steps))
