"""The built-in tasks a `task` step can call, by name."""

from __future__ import annotations

from procctl.agent.tasks.base import TaskContext, TaskError, TaskFunction, TaskSpec
from procctl.agent.tasks.basic import log_task, sleep_task
from procctl.agent.tasks.exec import exec_task
from procctl.agent.tasks.files import read_task, write_task
from procctl.agent.tasks.http import http_task

BUILTIN_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("log", log_task, {"message": True, "level": False},
                 "write a message to the instance's history"),
        TaskSpec("sleep", sleep_task, {"seconds": True}, "wait without blocking other instances"),
        TaskSpec(
            "exec", exec_task,
            {"argv": True, "cwd": False, "env": False, "inherit_env": False, "stdin": False,
             "check": False},
            "run a program from an argv list (no shell)",
        ),
        TaskSpec("file.read", read_task, {"path": True, "format": False, "encoding": False},
                 "read a file as text, JSON, lines or bytes"),
        TaskSpec(
            "file.write", write_task,
            {"path": True, "content": True, "format": False, "encoding": False, "append": False},
            "write (atomically) or append to a file",
        ),
        TaskSpec(
            "http", http_task,
            {"url": True, "method": False, "headers": False, "json": False, "body": False,
             "timeout": False, "expect_status": False},
            "send an HTTP request",
        ),
    )
}

__all__ = ["BUILTIN_TASKS", "TaskContext", "TaskError", "TaskFunction", "TaskSpec"]
