"""The `task` step: render the arguments, call the task with a timeout and retries."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import TaskStep
from procctl.agent.durations import format_duration
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed
from procctl.agent.expressions import render_value
from procctl.agent.snapshot import Frame
from procctl.agent.tasks import BUILTIN_TASKS, TaskContext, TaskError

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner

log = logging.getLogger("procctl.engine")


async def run_task_step(runner: Runner, step: TaskStep, state: InstanceState,
    resume: list[Frame] | None = None,
) -> Any:
    spec = BUILTIN_TASKS[step.task]
    attempts = step.retries + 1
    for attempt in range(1, attempts + 1):
        args = render_value(dict(step.args), state.context(step, attempt))

        async def write_log(level: str, message: str) -> None:
            await runner.emit("log", step, {"level": level, "message": message})

        context = TaskContext(state.instance_id, step.id, attempt, state.base_dir, write_log)
        try:
            call = spec.run(args, context)
            if step.timeout is not None:
                return await asyncio.wait_for(call, step.timeout)
            return await call
        except TimeoutError:
            problem = f"task {step.task!r} timed out after {format_duration(step.timeout or 0)}"
        except TaskError as exc:
            problem = str(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a task's own bug: fail the step, keep the agent
            log.exception("task %s in step %s raised", step.task, step.id)
            problem = f"task {step.task!r} raised {type(exc).__name__}: {exc}"
        if attempt < attempts:
            await runner.emit("step_retry", step, {"attempt": attempt, "message": problem,
                                                   "delay": step.retry_delay})
            await asyncio.sleep(step.retry_delay)
    raise StepFailed(problem, step_id=step.id, step_path=step.path, kind="task_failed")
