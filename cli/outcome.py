"""How an instance stands after `run --wait`, `resume` or `retry`: result, error or pause.

Its own module so that `resume` and `retry` print it without importing `run`'s
definition loader (and Jinja with it).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from procctl.cli import render
from procctl.cli.payload_hints import missing_field_hint
from procctl.store.records import Status

#: the exit code of a command whose instance failed
EXIT_INSTANCE_FAILED = 1
#: the exit code of a command whose instance was cancelled (procctl cancel)
EXIT_INSTANCE_CANCELLED = 11


def print_outcome(summary: dict[str, Any]) -> None:
    """How an instance stands after `run --wait` or `resume`: result, error or pause."""
    if "intermediate" in summary:
        render.console.print("[bold]Intermediate result:[/] "
                             + escape(render.value_text(summary["intermediate"])))
        render.note(f"The instance goes on; follow it with: procctl show {summary['instance_id']}")
        return
    took = render.elapsed(summary["started_at"], summary["ended_at"])
    state = render.status_text(summary["status"])
    if summary["status"] == Status.PAUSED and not summary.get("checkpoint"):
        error = summary.get("error") or {}
        render.console.print(f"{state} (held: {render.safe_text(error.get('message'))})")
        render.console.print("Run it again with: "
                             + render.safe_text(summary.get("retry_command")))
        return
    if summary["status"] == Status.PAUSED and summary.get("waiting_for"):
        checkpoint = summary.get("checkpoint") or {}
        render.console.print(f"{state} at call [bold]{render.safe_text(checkpoint.get('step_id'))}"
                             "[/]: waiting for "
                             + escape(render.waiting_text(summary["waiting_for"])))
        return
    if summary["status"] == Status.PAUSED:
        checkpoint = summary.get("checkpoint") or {}
        step_id = render.safe_text(checkpoint.get("step_id"))
        correlation = render.safe_text(summary["correlation_id"])
        render.console.print(f"{state} at checkpoint [bold]{step_id}[/], "
                             f"correlation ID [bold]{correlation}[/]")
        if checkpoint.get("resume_at"):
            render.console.print("Resumes by itself at "
                                 + render.short_time(checkpoint["resume_at"]))
        render.console.print("Resume it with: " + render.safe_text(summary["resume_command"]))
        return
    if summary["status"] == Status.CANCELLED:
        error = summary.get("error") or {}
        render.console.print(f"{state} in {took}: {render.safe_text(error.get('message'))}")
        return
    render.console.print(f"{state} in {took}")
    if summary["status"] == Status.COMPLETED:
        if summary["result"] is not None:
            render.console.print("[bold]Result:[/] " + escape(render.value_text(summary["result"])))
        return
    error = summary.get("error") or {}
    where = f" at step {error['step_id']!r}" if error.get("step_id") else ""
    render.error(f"instance {summary['instance_id']} failed{where}: {error.get('message')}",
                 f"see its history with: procctl show {summary['instance_id']}")
    missing = missing_field_hint(summary)
    if missing is not None:
        render.note(missing)
    elif summary.get("resume_command"):
        render.note("It holds a checkpoint: once the cause is fixed, go on from it with: "
                    + str(summary["retry_command"]))
    elif summary.get("retry_command"):
        render.note("Once the cause is fixed, run it again with: "
                    + str(summary["retry_command"]))
