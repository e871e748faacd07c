"""`procctl show ID`: one instance, from the store (works while the agent is down)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from procctl.agent import snapshot as snapshots
from procctl.agent import values
from procctl.agent.summary import instance_summary, waiting_for
from procctl.cli import render
from procctl.cli.options import global_options, read_store
from procctl.cli.render import waiting_text
from procctl.store import StoreContract
from procctl.store.records import CheckpointRecord, EventRecord, InstanceRecord, Status


def _read(store: StoreContract, instance_id: str) -> tuple[
        InstanceRecord, list[EventRecord], CheckpointRecord | None, dict[str, Any] | None]:
    record = store.get_instance(instance_id)
    return (record, store.events(record.id), store.find_checkpoint(record.id),
            waiting_for(record, store.get_instance))


def show_command(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(help="Instance ID (a unique prefix will do).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show one instance: status, params, result or error, and its history."""
    options = global_options(ctx)
    record, events, checkpoint, child = read_store(options.home, lambda store: _read(
        store, instance_id))
    summary = instance_summary(record, checkpoint)
    if child is not None:
        summary["waiting_for"] = child
    if checkpoint is not None:
        stored = snapshots.loads(checkpoint.snapshot_json)
        summary["stored_variables"] = values.to_plain(stored.variables)
        summary["position"] = stored.hydration_point
        if "resume_command" in summary:
            summary["signal_file"] = {"correlation_id": checkpoint.correlation_id,
                                      "payload": {}}
    history = [{"at": e.at, "kind": e.kind, "step_id": e.step_id, "step_path": e.step_path,
                "data": json.loads(e.data_json)} for e in events]
    if as_json:
        render.print_json({**summary, "history": history})
        return
    pairs = [
        ("Instance", summary["instance_id"]),
        ("Process", render.safe_text(f"{summary['process']} {summary['version'] or ''}".strip())),
        ("Status", render.status_text(summary["status"])),
        ("Started", render.short_time(summary["started_at"])),
        ("Ended", render.short_time(summary["ended_at"])),
        ("Params", escape(render.value_text(summary["params"]))),
    ]
    if summary.get("parent_id"):
        pairs.append(("Parent", render.safe_text(
            f"{summary['parent_id']} (this instance runs a call step of it: procctl show "
            f"{summary['parent_id']})")))
    if summary["status"] == Status.COMPLETED:
        pairs.append(("Result", escape(render.value_text(summary["result"]))))
    if summary["error"]:
        error = summary["error"]
        where = f" (step {error['step_id']})" if error.get("step_id") else ""
        pairs.append(("Error", f"[red]{render.safe_text(error.get('message'))}"
                               f"{render.safe_text(where)}[/]"))
    if checkpoint is not None:
        pairs += [
            ("Checkpoint", render.safe_text(
                f"{checkpoint.step_id} at {summary['position']}, "
                f"iteration {checkpoint.iteration}, {checkpoint.size} bytes")),
            ("Correlation ID", render.safe_text(checkpoint.correlation_id)),
            ("Expires", render.until(checkpoint.expires_at)),
            ("Next resume", render.until(checkpoint.resume_at)),
            ("Stored", escape(render.value_text(summary["stored_variables"]))),
        ]
    if child is not None:
        pairs.append(("Waiting for", escape(waiting_text(child))))
    elif "resume_command" in summary:
        signal_text = json.dumps(summary["signal_file"])
        pairs += [
            ("Resume", render.safe_text(summary["resume_command"]) + " [--data key=value]"),
            ("or drop", render.safe_text(f"{signal_text} as NAME.json into the signals "
                                         "directory (write NAME.tmp, then rename)")),
        ]
    if "retry_command" in summary:  # failed, or held by on_crash = "hold"
        how = ("from its checkpoint, through the recover block" if checkpoint is not None
               else "from the beginning, with the same params")
        pairs.append(("Retry", render.safe_text(f"{summary['retry_command']}  ({how})")))
    elif summary["status"] == Status.FAILED and (summary["error"] or {}).get("kind") == "expired":
        pairs.append(("Retry", "cannot be retried: its checkpoint expired and the snapshot "
                               "is gone; run the process again with procctl run"))
    render.console.print(render.key_value_table(pairs))
    table = Table(title="History", title_justify="left", box=None, header_style="bold")
    for column in ("TIME", "EVENT", "STEP", "DETAIL"):
        table.add_column(column, overflow="fold")
    for event in history:
        detail = event["data"].get("message") or event["data"].get("error") or ""
        if isinstance(detail, dict):
            detail = detail.get("message", "")
        if event["kind"] == "step_finished":
            detail = f"{event['data'].get('duration', 0):.2f}s"
        elif event["kind"] == "child_started":
            detail = f"child instance {event['data'].get('instance_id')}"
        elif event["kind"] == "branch_taken":
            taken = event["data"].get("branch") or ", ".join(event["data"].get("branches", []))
            detail = f"took {taken or 'no branch'}"
        # data: on one line without control characters; a value keeps its JSON layout
        shown = (render.value_text(event["data"].get("value"))
                 if event["kind"] == "intermediate_return" else render.neutralise(str(detail)))
        table.add_row(render.short_time(event["at"]), render.safe_text(event["kind"]),
                      render.safe_text(event["step_id"] or ""), escape(shown))
    render.console.print()
    render.console.print(table)
