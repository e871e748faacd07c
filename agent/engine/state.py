"""What a running instance carries from step to step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procctl.agent.definition.model import Step

#: emit(kind, step, data): record an event in the instance's history and tell watchers.
EventSink = Callable[[str, Step | None, dict[str, Any]], Awaitable[None]]


@dataclass
class InstanceState:
    """Variables, step results and the last result of one instance.

    `results` maps a step id to that step's latest result (Frends' named #result);
    `last_result` is what expressions see as `result`.
    """

    instance_id: str
    process: dict[str, Any]
    base_dir: Path
    variables: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    last_result: Any = None

    def context(self, step: Step | None = None, attempt: int = 1) -> dict[str, Any]:
        """The names an expression can read."""
        context = dict(self.variables)
        context["result"] = self.last_result
        context["results"] = self.results
        context["process"] = self.process
        if step is not None:
            context["step"] = {
                "id": step.id,
                "attempt": attempt,
                "idempotency_key": f"{self.instance_id}:{step.id}:{attempt}",
            }
        return context


class ReturnFromProcess(Exception):
    """A `return` step ends the process with a value."""

    def __init__(self, value: Any) -> None:
        super().__init__("return")
        self.value = value
