"""Where the engine's expressions run: on the event loop for a slice, else in a thread.

Every instance is a coroutine on one event loop, and an expression is plain Python:
while it runs, nothing else does. Almost every evaluation takes some microseconds, so
it runs in place, within a slice of `SLICE` seconds. One that is still running at the
end of its slice is abandoned and run again from the start in a worker thread, with
the whole budget (the `expression_timeout` setting, 1 s by default): the loop and the
other instances go on meanwhile, and a hostile expression costs the loop one slice.
Running an expression again is safe: evaluation has no side effects (only `now()` may
read a later time). A thread cannot be stopped from outside, so the sandbox's own
deadline is what ends the evaluation (see `agent/sandbox.py`).

Every few milliseconds of evaluations the instance also yields to the loop, so a loop
of many heavy-but-allowed expressions shares the loop with the other instances.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from procctl.agent.expression_limits import SliceExpired, budget
from procctl.agent.expressions import Expression, render_value
from procctl.agent.plain_templates import MISS

T = TypeVar("T")

#: How long an evaluation may hold the event loop before it moves to a thread.
SLICE = 0.02
#: How long evaluations may run on the loop, back to back, before the instance yields.
YIELD_AFTER = 0.005
#: Slow evaluations run at most this many at a time, apart from other blocking work.
THREADS = 2

_pool: ThreadPoolExecutor | None = None
_last_yield = time.monotonic()


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="procctl-expr")
    return _pool


def _whole_budget(work: Callable[[], T]) -> T:
    with budget():
        return work()


async def _run(work: Callable[[], T]) -> T:
    global _last_yield
    try:
        with budget(slice_seconds=SLICE):
            value = work()
    except SliceExpired:
        loop = asyncio.get_running_loop()
        value = await loop.run_in_executor(_threads(), _whole_budget, work)
        _last_yield = time.monotonic()
        return value
    if time.monotonic() - _last_yield > YIELD_AFTER:
        await asyncio.sleep(0)
        _last_yield = time.monotonic()
    return value


async def render(value: Any, context: Mapping[str, Any]) -> Any:
    """`render_value`, off the loop when it takes long: every template in a field."""
    return await _run(lambda: render_value(value, context))


async def evaluate(expression: Expression, context: Mapping[str, Any]) -> Any:
    """`expression.evaluate`, off the loop when it takes long. Literal text and plain
    names (`"approval-{{ order }}"`) take a few microseconds: no slice, no Jinja."""
    if expression.kind == "literal":
        return expression.source
    if expression.plain:
        value = expression.evaluate_plain(context)
        if value is not MISS:
            return value
    return await _run(lambda: expression.evaluate(context))
