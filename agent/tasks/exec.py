"""The `exec` task: run a program from an argv list. Never through a shell.

The child runs in its own session (process group), so a timeout, a cancel or the
agent's shutdown ends it and everything it started: SIGTERM to the group, then SIGKILL
to what is left of it after KILL_GRACE seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from procctl.agent.tasks.base import TaskContext, TaskError, require_type

OUTPUT_LIMIT = 1_048_576
STDERR_TAIL = 400
#: seconds the process group has to exit after SIGTERM before it gets SIGKILL
KILL_GRACE = 2.0
#: how often the group is looked at meanwhile
GROUP_POLL = 0.02


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
    # Started in a task of its own: a cancel that comes while the program starts waits
    # for it to have started, then ends its group (asyncio's own clean-up would kill
    # the program alone, and wait for whatever it started to close its output).
    starting = asyncio.ensure_future(asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin_text is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    ))
    try:
        proc = await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await end_group(await starting)
        raise
    except FileNotFoundError as exc:
        raise TaskError(f"cannot run {argv[0]!r}: {exc.strerror} ({exc.filename})") from exc
    except PermissionError as exc:
        raise TaskError(f"cannot run {argv[0]!r}: permission denied") from exc
    try:
        stdin_bytes = None if stdin_text is None else str(stdin_text).encode()
        out, err = await proc.communicate(stdin_bytes)
    except BaseException:
        await end_group(proc)
        raise
    stdout = out[:OUTPUT_LIMIT].decode("utf-8", "replace")
    stderr = err[:OUTPUT_LIMIT].decode("utf-8", "replace")
    code = proc.returncode if proc.returncode is not None else -1
    if code != 0 and args.get("check", True):
        tail = stderr.strip()[-STDERR_TAIL:] or "(no stderr)"
        raise TaskError(f"{argv[0]} exited with status {code}: {tail}")
    return {"exit_code": code, "stdout": stdout, "stderr": stderr}


async def end_group(proc: asyncio.subprocess.Process, grace: float | None = None) -> None:
    """End the child's process group: SIGTERM, and SIGKILL to whatever of it is left
    after `grace` seconds (KILL_GRACE); returns once the child is reaped. It runs while
    the task is being cancelled: its own waits are bounded, never cancelled."""
    grace = KILL_GRACE if grace is None else grace
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.returncode is not None and not _group_alive(proc.pid):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(GROUP_POLL):
                await proc.wait()
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _group_alive(pgid: int) -> bool:
    """Whether a live process of the group is left (the child's own children too). A
    zombie does not count: it has ended, whoever reaps it (in a container, an init that
    reaps late)."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: any member, zombies included
        return _group_signalable(pgid)
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        # after the name: state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _group_signalable(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
