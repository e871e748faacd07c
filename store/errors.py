"""Errors raised by the store. Every SQLite error that reaches a caller is one of these
(see `store/integrity.py`), so the agent and the CLI never meet a raw `sqlite3` error."""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """A store problem, with a message naming the file or object and an optional hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class NotFound(StoreError):
    """The requested row does not exist."""


class AmbiguousId(NotFound):
    """An instance ID prefix that matches several instances, or is too short to name one
    safely; `candidates` are (id, process, status) of the newest matches."""

    def __init__(self, message: str, hint: str | None = None,
                 candidates: tuple[tuple[str, str, str], ...] = ()) -> None:
        super().__init__(message, hint)
        self.candidates = candidates


class Conflict(StoreError):
    """A conditional transition found the row in another state."""


class StoreCorrupt(StoreError):
    """The database file is damaged: SQLite or the check at open found it malformed."""

    @classmethod
    def at(cls, path: Path, detail: str) -> StoreCorrupt:
        return cls(
            f"the store {path} is corrupt: {detail}",
            hint=f"with no agent running for this home, restore {path.name} from a backup, "
                 f"or save what is readable: sqlite3 {path} .recover | sqlite3 "
                 f"{path.parent / 'recovered.db'}, then move recovered.db into its place",
        )


class StoreUnsafe(StoreError):
    """A store file that is a symbolic link, belongs to another user, or that others
    may write: it is not opened."""


class StoreFull(StoreError):
    """The disk is full; the transaction was rolled back whole."""


class StoreUnreachable(StoreError):
    """The store's server cannot be reached (PostgreSQL down, restarting, or the
    connection lost); the transaction in flight, if any, was rolled back or its outcome
    is unknown."""


class Fenced(StoreError):
    """This agent's lease on a shared store ran out and another agent may have taken
    over its instances: the store refuses its writes (see store/agents.py)."""
