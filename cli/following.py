"""What a command prints while it follows an instance (run --wait, resume, retry,
follow): one step line per event, in order, and what to do after Ctrl-C.

The agent's side is agent/follower.py; every command reads its stream here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import typer

from procctl.cli import render

#: the exit code of a command stopped by Ctrl-C (the instance goes on)
EXIT_INTERRUPTED = 130

Stream = Iterator[tuple[str, dict[str, Any]]]


def follow(stream: Stream, *, instance_id: str | None = None, quiet: bool = False,
           json_lines: bool = False,
           on_event: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Print the stream's events until its result, and return the result's data.

    `quiet`: print nothing; `json_lines`: each event as one JSON line (for scripts);
    `on_event(event)`: called first for each event; True when it printed it itself.
    Ctrl-C ends the command (exit 130), not the instance: it says how to follow it
    again (the ID is taken from the stream when not given)."""
    following = instance_id
    try:
        for kind, payload in stream:
            if kind == "result":
                return payload
            following = following or payload.get("instance_id")
            if json_lines:
                print(json.dumps(payload, ensure_ascii=False), flush=True)
                continue
            if on_event is not None and on_event(payload):
                continue
            line = None if quiet else render.step_line(payload)
            if line:
                render.console.print(line)
    except KeyboardInterrupt:
        if following:
            render.note(f"Stopped following; instance {following} goes on. Follow it again "
                        f"with: procctl follow {following}")
        else:
            render.note("Stopped following; the instance goes on (procctl list shows it).")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return {}
