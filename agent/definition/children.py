"""Where a `call` step's definition file comes from: the disk when a definition is
first loaded, the store (the pinned text) when an instance resumes later."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from procctl.store.records import DefinitionRecord


class ChildSource(Protocol):
    def read(self, ref: str) -> tuple[str, str | None, ChildSource]:
        """The source text and file name of `ref`, and the source of its own calls.
        Raises ValueError with a message for the user."""
        ...


class DiskChildren:
    """Files relative to the calling definition's directory; refuses a call cycle."""

    def __init__(self, base_dir: Path, chain: tuple[str, ...] = ()) -> None:
        self.base_dir = base_dir
        self.chain = chain

    @classmethod
    def beside(cls, file: str | None) -> DiskChildren:
        if file is None:
            return cls(Path.cwd())
        path = Path(file).resolve()
        return cls(path.parent, (str(path),))

    def read(self, ref: str) -> tuple[str, str | None, ChildSource]:
        path = (self.base_dir / Path(ref).expanduser()).resolve()
        if str(path) in self.chain:
            names = " -> ".join(Path(p).name for p in (*self.chain, str(path)))
            raise ValueError(f"call cycle: {names}")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"no such file: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        return text, str(path), DiskChildren(path.parent, (*self.chain, str(path)))


class PinnedChildren:
    """The texts pinned with an instance: `refs` maps a call's file to a definition
    hash, `texts` a hash to (source, file, that definition's own refs)."""

    def __init__(self, refs: dict[str, str],
                 texts: dict[str, tuple[str, str | None, dict[str, str]]]) -> None:
        self.refs = refs
        self.texts = texts

    def read(self, ref: str) -> tuple[str, str | None, ChildSource]:
        sha = self.refs.get(ref)
        if sha is None or sha not in self.texts:
            raise ValueError(f"the definition called as {ref!r} is not pinned in the store")
        source, file, refs = self.texts[sha]
        return source, file, PinnedChildren(refs, self.texts)


def pinned_from_store(get_definition: Callable[[str], DefinitionRecord],
                      sha256: str) -> tuple[DefinitionRecord, PinnedChildren]:
    """An instance's definition as pinned in the store, and every text its calls reach
    (from the store, never the disk): what `parse_definition` needs to read it again.
    `get_definition`: the store's (run it where the store may be used)."""
    record = get_definition(sha256)
    refs: dict[str, str] = json.loads(record.children_json or "{}")
    texts: dict[str, tuple[str, str | None, dict[str, str]]] = {}
    todo = list(refs.values())
    while todo:
        sha = todo.pop()
        if sha not in texts:
            child = get_definition(sha)
            child_refs: dict[str, str] = json.loads(child.children_json or "{}")
            texts[sha] = (child.source, child.path, child_refs)
            todo.extend(child_refs.values())
    return record, PinnedChildren(refs, texts)
