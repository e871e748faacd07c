"""`file.read` and `file.write`. Relative paths are relative to the definition's directory."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from procctl.agent import values
from procctl.agent.atomic import write_bytes_atomically
from procctl.agent.tasks.base import TaskContext, TaskError

FORMATS = ("text", "json", "bytes", "lines")


async def read_task(args: Mapping[str, Any], ctx: TaskContext) -> Any:
    path = ctx.resolve(str(args["path"]))
    fmt = str(args.get("format", "text"))
    encoding = str(args.get("encoding", "utf-8"))
    if fmt not in FORMATS:
        raise TaskError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise TaskError(f"cannot read {path}: {exc.strerror}") from exc
    if fmt == "bytes":
        return data
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise TaskError(f"cannot decode {path} as {encoding}: {exc}") from exc
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path} is not JSON: {exc}") from exc
    if fmt == "lines":
        return text.splitlines()
    return text


async def write_task(args: Mapping[str, Any], ctx: TaskContext) -> Any:
    path = ctx.resolve(str(args["path"]))
    fmt = str(args.get("format", "text"))
    content = args["content"]
    if fmt == "json":
        data = (json.dumps(values.to_plain(content), indent=2, ensure_ascii=False) + "\n").encode()
    elif isinstance(content, bytes):
        data = content
    elif isinstance(content, str):
        data = content.encode(str(args.get("encoding", "utf-8")))
    else:
        raise TaskError(
            f"content is a {type(content).__name__}; use format = \"json\" to write structured data"
        )
    append = bool(args.get("append", False))
    try:
        await asyncio.to_thread(_write, path, data, append)
    except OSError as exc:
        raise TaskError(f"cannot write {path}: {exc.strerror}") from exc
    return {"path": str(path), "bytes": len(data)}


def _write(path: Path, data: bytes, append: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with open(path, "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return
    write_bytes_atomically(path, data)
