"""The `task` step: render the arguments, call the task with a timeout and retries."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import TaskStep
from procctl.agent.durations import format_duration
from procctl.agent.engine.evaluation import render
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed
from procctl.agent.snapshot import Frame
from procctl.agent.tasks import BUILTIN_TASKS, TaskContext, TaskError, TaskFunction
from procctl.agent.tasks.plugins import load_plugin

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner

log = logging.getLogger("procctl.engine")

_plugins: dict[tuple[str, Path], TaskFunction] = {}


def task_function(name: str, base_dir: Path) -> TaskFunction:
    """A built-in task, or a plugin (imported once per agent)."""
    spec = BUILTIN_TASKS.get(name)
    if spec is not None:
        return spec.run
    key = (name, base_dir)
    if key not in _plugins:
        _plugins[key] = load_plugin(name, base_dir)
    return _plugins[key]


async def run_task_step(runner: Runner, step: TaskStep, state: InstanceState,
    resume: list[Frame] | None = None,
) -> Any:
    """Attempts go on while the policy says the error retries and attempts remain."""
    policy = step.retry
    try:
        function = task_function(step.task, state.base_dir)
    except TaskError as exc:
        raise StepFailed(str(exc), step_id=step.id, step_path=step.path,
                         kind="task_failed") from None
    for attempt in range(1, policy.attempts + 1):
        args = await render(dict(step.args), state.context(step, attempt))

        async def write_log(level: str, message: str) -> None:
            await runner.emit("log", step, {"level": level, "message": message})

        context = TaskContext(state.instance_id, step.id, attempt, state.base_dir, write_log)
        deadline = asyncio.timeout(step.timeout)
        try:
            async with deadline:
                return await function(args, context)
        except TimeoutError as exc:
            if not deadline.expired():  # a task's own TimeoutError, not the step's timeout
                problem, kinds = _raised(step, exc)
            else:
                problem = (f"task {step.task!r} timed out after "
                           f"{format_duration(step.timeout or 0)}")
                kinds = ("timeout",)
        except TaskError as exc:
            problem, kinds = str(exc), ("task_error",)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a plugin's raise, or a task's bug: fail the step
            problem, kinds = _raised(step, exc)
        if attempt < policy.attempts and policy.retries(kinds):
            delay = policy.wait_before(attempt, random.random())
            await runner.emit("step_retry", step, {"attempt": attempt, "message": problem,
                                                   "delay": delay, "error": kinds[0]})
            await asyncio.sleep(delay)
            continue
        if attempt > 1:
            problem += f" (attempt {attempt} of {policy.attempts})"
        raise StepFailed(problem, step_id=step.id, step_path=step.path,
                         kind="timeout" if kinds == ("timeout",) else "task_failed")
    raise AssertionError("unreachable: the loop returns or raises")


def _raised(step: TaskStep, exc: BaseException) -> tuple[str, tuple[str, ...]]:
    """The message of an exception a task raised, and its class names (the error kinds
    a retry policy's `on` can name)."""
    log.info("task %s in step %s raised", step.task, step.id, exc_info=exc)
    kinds = tuple(cls.__name__ for cls in type(exc).__mro__
                  if cls not in (BaseException, object))
    return f"task {step.task!r} raised {type(exc).__name__}: {exc}", kinds
