"""Typed frame states: what a step keeps of its own in a frame of the position.

A frame (snapshot.Frame) says which step of which block runs; a step that has state of
its own while one of its blocks runs (a loop's items and values so far, an inclusive
step's selected branches, a scope's caught error or pending outcome) keeps it in the
frame of that block, as one of the frozen dataclasses here. Each has a TAG, its `kind`
in the snapshot document; the snapshot codec (agent/snapshot.py) writes and reads them
through FRAME_STATES, field by field, and refuses an unknown tag or a missing field.

No other step has a frame state: `if`/`switch` (the block's name says which branch
ran), a scope's `do`, `parallel` branches and a checkpoint's `commit`/`recover` blocks
(validation keeps checkpoints out of them, so no snapshot is ever taken inside them).

States are immutable: freezing a position hands them over as they are, with no copy.
The engine keeps what changes while a block runs (a loop's values so far) in a
`StateSource` of its own and builds the state from it when the position is frozen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, Self


class StateSource(Protocol):
    """What a frame cursor holds: a frame state, or the live form a loop keeps."""

    def frozen(self) -> FrameState:
        """The state as it stands now, immutable (no deep copy)."""
        ...

    def iteration(self) -> int | None:
        """The loop's iteration, for a loop's state (a call step's key counts it)."""
        ...


@dataclass(frozen=True)
class FrameState:
    """Base of the frame states; TAG names each in the snapshot document."""

    TAG: ClassVar[str] = ""

    def frozen(self) -> FrameState:
        return self

    def iteration(self) -> int | None:
        return None

    def to_fields(self) -> dict[str, Any]:
        """The state's fields as the document holds them (values still typed)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Self:
        """The state from its fields as read (every field present): ValueError or
        TypeError for a field of the wrong type."""
        return cls(**data)


@dataclass(frozen=True)
class CaughtError:
    """A step's failure as a scope keeps it: what `catch` sees in its error variable."""

    message: str
    step: str | None
    step_path: str | None
    kind: str

    def as_value(self) -> dict[str, Any]:
        """The error variable's value (also its form in the document)."""
        return {"message": self.message, "step": self.step, "step_path": self.step_path,
                "kind": self.kind}

    @classmethod
    def from_value(cls, data: Any) -> CaughtError:
        if not isinstance(data, Mapping):
            raise TypeError(f"an error is an object, not {type(data).__name__}")
        return cls(_text(data["message"]), _maybe_text(data.get("step")),
                   _maybe_text(data.get("step_path")), _text(data.get("kind")))


@dataclass(frozen=True)
class ForeachState(FrameState):
    """A foreach body's frame: the items (evaluated once, when the loop started), the
    index of the iteration running, the values of the iterations before it, and the
    variables the loop variables shadow (they get them back when the loop ends)."""

    TAG: ClassVar[str] = "foreach"
    items: tuple[Any, ...]
    index: int
    results: tuple[Any, ...]
    shadowed: Mapping[str, Any]

    def iteration(self) -> int | None:
        return self.index

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Self:
        return cls(_sequence(data["items"]), _int(data["index"]),
                   _sequence(data["results"]), _mapping(data["shadowed"]))


@dataclass(frozen=True)
class WhileState(FrameState):
    """A while body's frame: the iteration's number, the values of the iterations
    before it, and the variables the loop variables shadow."""

    TAG: ClassVar[str] = "while"
    index: int
    results: tuple[Any, ...]
    shadowed: Mapping[str, Any]

    def iteration(self) -> int | None:
        return self.index

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Self:
        return cls(_int(data["index"]), _sequence(data["results"]),
                   _mapping(data["shadowed"]))


@dataclass(frozen=True)
class InclusiveState(FrameState):
    """An inclusive branch's frame: the blocks of the branches whose conditions held at
    the start ("branches[N]", in order) and the values of those that have ended, by
    branch name."""

    TAG: ClassVar[str] = "inclusive"
    selected: tuple[str, ...]
    results: Mapping[str, Any]

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Self:
        return cls(tuple(_text(block) for block in _sequence(data["selected"])),
                   _mapping(data["results"]))


@dataclass(frozen=True)
class CatchState(FrameState):
    """A scope's `catch` frame: the error it handles, and the variable the error
    variable shadows, if any."""

    TAG: ClassVar[str] = "catch"
    error: CaughtError
    shadowed: Mapping[str, Any]

    def to_fields(self) -> dict[str, Any]:
        return {"error": self.error.as_value(), "shadowed": self.shadowed}

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Self:
        return cls(CaughtError.from_value(data["error"]), _mapping(data["shadowed"]))


@dataclass(frozen=True)
class FinallyState(FrameState):
    """A scope's `finally` frame: the outcome the scope ends with once `finally` is
    done, the value of `do` or `catch`, or the error to fail with again."""

    TAG: ClassVar[str] = "finally"
    value: Any
    error: CaughtError | None

    def to_fields(self) -> dict[str, Any]:
        return {"value": self.value,
                "error": None if self.error is None else self.error.as_value()}

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Self:
        error = data["error"]
        return cls(data["value"], None if error is None else CaughtError.from_value(error))


def field_names(cls: type[FrameState]) -> tuple[str, ...]:
    """The fields a state of `cls` has in the document, in order."""
    return tuple(f.name for f in fields(cls))


#: tag -> state class; the snapshot codec reads a state's `kind` through it
FRAME_STATES: dict[str, type[FrameState]] = {
    cls.TAG: cls for cls in (ForeachState, WhileState, InclusiveState, CatchState,
                             FinallyState)
}


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _maybe_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _sequence(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value
