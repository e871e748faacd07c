"""The agent's errors. Each names the object it is about and may carry a hint.

The CLI turns them into `Error: ...` / `Hint: ...` and an exit code (see docs/cli.md).
"""

from __future__ import annotations

from dataclasses import dataclass


class AgentError(Exception):
    """Root of the agent's errors."""

    exit_code = 70

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(AgentError):
    """Bad command-line input: an option, a param value, a params file."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One finding of validation: where it is, what is wrong, what to do."""

    message: str
    file: str | None = None
    line: int | None = None
    step_path: str | None = None
    step_id: str | None = None
    hint: str | None = None
    #: "error" stops a run; "warning" is reported and the run goes on
    severity: str = "error"

    def location(self) -> str:
        where = self.file or "<definition>"
        if self.line is not None:
            where += f":{self.line}"
        if self.step_path:
            where += f": {self.step_path}"
            if self.step_id:
                where += f" (id {self.step_id!r})"
        return where

    def render(self) -> str:
        label = "warning: " if self.severity == "warning" else ""
        return f"{self.location()}: {label}{self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "step_path": self.step_path,
            "step_id": self.step_id,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
        }


class DefinitionError(AgentError):
    """A definition that cannot run: TOML syntax or validation problems (all of them)."""

    exit_code = 3

    def __init__(self, problems: list[Problem]) -> None:
        first = next((p for p in problems if p.severity == "error"), problems[0])
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(first.render() + more, first.hint)
        self.problems = problems


class AgentUnreachable(AgentError):
    """No agent answers on the home's socket, or another agent holds the home."""

    exit_code = 4


class ProtocolMismatch(AgentUnreachable):
    """The agent and this command are different procctl versions: they cannot talk."""


class AgentStartFailed(AgentUnreachable):
    """A background agent exited at start. It keeps the agent's own exit code when that
    says why (2 a bad config.toml, 6 a store it refused), else 4."""

    def __init__(self, message: str, hint: str | None = None, *,
                 agent_exit_code: int | None = None) -> None:
        super().__init__(message, hint)
        if agent_exit_code is not None and 2 <= agent_exit_code <= 8:
            self.exit_code = agent_exit_code


class StoreFailed(AgentError):
    """The agent's store failed a request (corrupt, locked too long, unusable): the
    agent's StoreError, passed on to the CLI with the store's exit code."""

    exit_code = 6


class UnsafeHome(AgentUnreachable):
    """The home, or a file in it, is a symbolic link, belongs to another user, or may
    be written by others: no agent runs there."""


class InstanceNotFound(AgentError):
    exit_code = 5


class Refused(AgentError):
    """The agent understood the request and will not do it (e.g. retry a completed
    instance); the message says why."""

    exit_code = 8


class RemoteDefinitionError(AgentError):
    """The agent found a definition invalid (the CLI checks first, so this is rare)."""

    exit_code = 3


class StepFailed(AgentError):
    """A step failed while an instance ran; carries the step for the error record."""

    def __init__(
        self,
        message: str,
        *,
        step_id: str | None = None,
        step_path: str | None = None,
        kind: str = "step_failed",
    ) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.step_path = step_path
        self.kind = kind


class ExpressionError(AgentError):
    """An expression failed to parse or to evaluate."""

    exit_code = 3
