"""Reading an instance's definition again from the store, as it was pinned (the one
way the agent, `show`, `explain`, `list-paused --wide` and the web view all do it)."""

from __future__ import annotations

from collections.abc import Callable

from procctl.agent.definition.children import PinnedChildren, pinned_from_store
from procctl.agent.definition.loader import parse_definition
from procctl.agent.definition.model import Definition
from procctl.store.records import DefinitionRecord


def parse_pinned(record: DefinitionRecord, children: PinnedChildren) -> Definition:
    """The definition from what `pinned_from_store` read."""
    return parse_definition(record.source, record.path, children=children)


def pinned_definition(get_definition: Callable[[str], DefinitionRecord],
                      sha256: str) -> Definition:
    """The definition with hash `sha256`, parsed from the store (`get_definition`: the
    store's) with what its calls run."""
    return parse_pinned(*pinned_from_store(get_definition, sha256))
