"""`procctl graph FILE`: draw a definition, as a tree on a terminal or as Mermaid text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, assert_never

import typer
from rich.text import Text
from rich.tree import Tree

from procctl.agent.definition import load_definition
from procctl.agent.definition.graph import NodeKind, TreeNode, mermaid, tree
from procctl.cli import render

FORMATS = ("tree", "mermaid")

def kind_style(kind: NodeKind) -> str:
    """The colour of a line's label in the tree, by what it is. Exhaustive: strict mypy
    names a step kind left without a colour."""
    match kind:
        case "process":
            return "bold"
        case "block":
            return "italic dim"
        case "task":
            return "cyan"
        case "set" | "scope":
            return "blue"
        case "if" | "switch" | "inclusive":
            return "magenta"
        case "parallel":
            return "bright_magenta"
        case "foreach" | "while" | "intermediate_return":
            return "green"
        case "call":
            return "bright_cyan"
        case "return":
            return "bold green"
        case "throw":
            return "bold red"
        case "checkpoint":
            return "bold black on yellow"
        case "scheduled_resume":
            return "yellow"
        case "signal":
            return "bright_blue"
        case _:
            assert_never(kind)


def _line(node: TreeNode) -> Text:
    """One line of the tree. Text objects are never read as markup, so the user's ids,
    conditions and templates print as they are (control characters neutralised)."""
    checkpoint = node.kind == "checkpoint"
    line = Text()
    line.append(render.neutralise(node.label), style=kind_style(node.kind))
    line.append(render.neutralise(node.detail))
    for key, value in node.facts:
        line.append(f"  {key} ", style="yellow" if checkpoint else "dim")
        line.append(render.neutralise(value), style="bold yellow" if checkpoint else "")
    return line


def _rich_tree(node: TreeNode, parent: Tree | None = None) -> Tree:
    branch = Tree(_line(node)) if parent is None else parent.add(_line(node))
    for child in node.children:
        _rich_tree(child, branch)
    return branch


def _fenced(text: str) -> str:
    return f"```mermaid\n{text}```\n"


def graph_command(
    file: Annotated[Path, typer.Argument(help="The process definition (TOML).")],
    output_format: Annotated[str | None, typer.Option(
        "--format", help="tree or mermaid.",
        show_default="tree on a terminal, else mermaid")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the Mermaid flowchart to this file "
        "(in a ```mermaid fence when it ends in .md).")] = None,
) -> None:
    """Draw a definition: its steps as a tree, or a Mermaid flowchart for docs and pull
    requests. Checkpoints show their correlation ID, TTL and the variables they store.

    Exits 3 when the definition is not valid."""
    if output_format is not None and output_format not in FORMATS:
        raise typer.BadParameter(f"{output_format!r} is not one of {', '.join(FORMATS)}",
                                 param_hint="--format")
    if output is not None and output_format == "tree":
        raise typer.BadParameter("--output writes the Mermaid flowchart; leave out "
                                 "--format tree", param_hint="--output")
    definition = load_definition(file)
    if output is not None:
        text = mermaid(definition)
        try:
            output.write_text(_fenced(text) if output.suffix.lower() == ".md" else text,
                              encoding="utf-8")
        except OSError as exc:
            render.error(f"cannot write {output}: {exc.strerror or exc}",
                         "check that the directory exists and can be written")
            raise typer.Exit(2) from None
        render.console.print(f"Wrote the Mermaid flowchart of process "
                             f"[bold]{render.safe_text(definition.name)}[/] to "
                             f"{render.safe_text(output)}")
        return
    chosen = output_format or ("tree" if sys.stdout.isatty() else "mermaid")
    if chosen == "mermaid":
        sys.stdout.write(mermaid(definition))
        sys.stdout.flush()
        return
    render.console.print(_rich_tree(tree(definition)))
    if output_format is None:
        render.note(f"For a Mermaid flowchart: procctl graph {file} --format mermaid "
                    f"(or --output {file.stem}.md)")
