"""The simple built-in tasks: log and sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from procctl.agent.durations import parse_duration
from procctl.agent.tasks.base import TaskContext, TaskError


async def log_task(args: Mapping[str, Any], ctx: TaskContext) -> Any:
    message = args["message"]
    level = str(args.get("level", "info")).lower()
    if level not in ("debug", "info", "warning", "error"):
        raise TaskError(f"level {level!r} is not one of debug, info, warning, error")
    text = message if isinstance(message, str) else repr(message)
    await ctx.log(level, text)
    return message


async def sleep_task(args: Mapping[str, Any], ctx: TaskContext) -> Any:
    try:
        seconds = parse_duration(args["seconds"])
    except ValueError as exc:
        raise TaskError(f"seconds: {exc}") from exc
    await asyncio.sleep(seconds)
    return seconds
