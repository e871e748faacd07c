"""What a task is: a named async function of its arguments and a context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TaskContext:
    """What a task may know about the step calling it.

    `idempotency_key` is stable for (instance, step, attempt): a task can pass it on so
    the system it calls recognises a repeat.
    """

    instance_id: str
    step_id: str
    attempt: int
    base_dir: Path
    log: Callable[[str, str], Awaitable[None]]

    @property
    def idempotency_key(self) -> str:
        return f"{self.instance_id}:{self.step_id}:{self.attempt}"

    def resolve(self, path: str) -> Path:
        """A task's path argument, relative to the definition file's directory."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate


TaskFunction = Callable[[Mapping[str, Any], TaskContext], Awaitable[Any]]


@dataclass(frozen=True)
class TaskSpec:
    """A built-in task: its function and its arguments (name -> required)."""

    name: str
    run: TaskFunction
    args: Mapping[str, bool]
    summary: str


class TaskError(Exception):
    """A task failed in a way the user should read (no traceback)."""


def require_type(args: Mapping[str, Any], name: str, kinds: type | tuple[type, ...]) -> Any:
    value = args.get(name)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        names = " or ".join(k.__name__ for k in _as_tuple(kinds))
        raise TaskError(f"argument {name!r} must be {names}, got {type(value).__name__}")
    return value


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)
