"""Drawings of a definition, pure functions over the frozen model: a Mermaid flowchart
and a tree outline (`procctl graph FILE`)."""

from procctl.agent.definition.graph.mermaid import END, FAILED, START, mermaid, mermaid_text
from procctl.agent.definition.graph.tree import NodeKind, TreeNode, tree

__all__ = ["END", "FAILED", "START", "NodeKind", "TreeNode", "mermaid", "mermaid_text", "tree"]
