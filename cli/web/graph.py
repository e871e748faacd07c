"""A definition's graph for the web view: the Mermaid text of `procctl graph` with one
step's node marked, for `static/graph.js` to render in the page."""

from __future__ import annotations

from procctl.agent.definition.graph.mermaid import mermaid_with_nodes
from procctl.agent.definition.model import Definition

#: mark class -> Mermaid style; drawn over the node's own class (a thicker border)
MARK_STYLES = {
    "current": "fill:#fff176,stroke:#1a56db,stroke-width:4px,color:#000",
    "failed": "fill:#f8b4b4,stroke:#9b1c1c,stroke-width:4px,color:#000",
}


def graph_source(definition: Definition, marked_step_id: str | None,
                 failed: bool = False) -> str:
    """Mermaid `flowchart TD` text of `definition`; the node of `marked_step_id` (where
    the instance stands, or with `failed`, where it failed) gets the class `current` or
    `failed`. An unknown or missing step id marks nothing. Node ids are generated and
    labels escaped by the drawing, so a step id cannot break or inject into the text."""
    text, nodes = mermaid_with_nodes(definition)
    node = nodes.get(marked_step_id) if marked_step_id is not None else None
    if node is None:
        return text
    mark = "failed" if failed else "current"
    return f"{text}    classDef {mark} {MARK_STYLES[mark]}\n    class {node} {mark}\n"
