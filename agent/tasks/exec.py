"""The `exec` task: run a program from an argv list. Never through a shell.

The child runs in its own session (process group), so a timeout or the agent's
shutdown ends it and everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from typing import Any

from procctl.agent.tasks.base import TaskContext, TaskError, require_type

OUTPUT_LIMIT = 1_048_576
STDERR_TAIL = 400


async def exec_task(args: Mapping[str, Any], ctx: TaskContext) -> Any:
    argv = require_type(args, "argv", list)
    if not argv or not all(isinstance(a, str | int | float) for a in argv):
        raise TaskError("argument 'argv' must be a non-empty list of strings")
    argv = [str(a) for a in argv]
    cwd = ctx.resolve(str(args["cwd"])) if args.get("cwd") else ctx.base_dir
    env = dict(os.environ) if args.get("inherit_env", True) else {"PATH": os.defpath}
    extra = args.get("env") or {}
    if not isinstance(extra, dict):
        raise TaskError("argument 'env' must be a table of strings")
    env.update({str(k): str(v) for k, v in extra.items()})
    env["PROCCTL_INSTANCE_ID"] = ctx.instance_id
    env["PROCCTL_STEP_ID"] = ctx.step_id
    env["PROCCTL_IDEMPOTENCY_KEY"] = ctx.idempotency_key
    stdin_text = args.get("stdin")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE if stdin_text is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise TaskError(f"cannot run {argv[0]!r}: {exc.strerror} ({exc.filename})") from exc
    except PermissionError as exc:
        raise TaskError(f"cannot run {argv[0]!r}: permission denied") from exc
    try:
        stdin_bytes = None if stdin_text is None else str(stdin_text).encode()
        out, err = await proc.communicate(stdin_bytes)
    except BaseException:
        _kill_group(proc.pid)
        await proc.wait()
        raise
    stdout = out[:OUTPUT_LIMIT].decode("utf-8", "replace")
    stderr = err[:OUTPUT_LIMIT].decode("utf-8", "replace")
    code = proc.returncode if proc.returncode is not None else -1
    if code != 0 and args.get("check", True):
        tail = stderr.strip()[-STDERR_TAIL:] or "(no stderr)"
        raise TaskError(f"{argv[0]} exited with status {code}: {tail}")
    return {"exit_code": code, "stdout": stdout, "stderr": stderr}


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
