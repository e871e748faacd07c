"""A person's cancel inside the engine: the task's CancelledError becomes InstanceCancelled.

`InstanceManager.cancel` sets the hooks' `cancellation` and cancels the instance's task,
so the step that runs stops where it awaits (an `exec` ends its process group, a `sleep`
wakes). The first place in the engine that sees the CancelledError turns it into
InstanceCancelled and withdraws the task's cancel request, so the `finally` blocks of the
enclosing scopes can await as any step does. A CancelledError with no cancellation set
(the agent's shutdown), or a second one in a task that took the cancel already, is
raised on: the instance stays `running` for the next start to recover.
"""

from __future__ import annotations

import asyncio
import weakref

from procctl.agent.engine.state import EngineHooks, InstanceCancelled

#: the tasks that turned a cancel into InstanceCancelled already (one each)
_taken: weakref.WeakSet[asyncio.Task[object]] = weakref.WeakSet()


def as_cancelled(hooks: EngineHooks, exc: BaseException) -> InstanceCancelled | None:
    """What `exc` (a CancelledError or an InstanceCancelled) means for the run: the
    person's cancellation, or None when it is a shutdown to raise on."""
    if isinstance(exc, InstanceCancelled):
        return exc
    if hooks.cancellation is None:
        return None
    task = asyncio.current_task()
    if task is not None:
        if task in _taken:
            return None
        _taken.add(task)
        if task.cancelling():
            task.uncancel()
    return InstanceCancelled(hooks.cancellation)
