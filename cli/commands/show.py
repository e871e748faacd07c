"""`procctl show ID`: one instance, from the store (works while the agent is down).

`Name  value` lines, then the last 20 events of its history (`--history all`: every
one), both fitted to the terminal (cli/plain.py): a value wraps at spaces, a command to
paste never wraps, and the history's DETAIL is cut to the room left.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from procctl.agent import snapshot as snapshots
from procctl.agent import values
from procctl.agent.paths import HomePaths
from procctl.agent.summary import instance_summary, waiting_for
from procctl.cli import plain, render
from procctl.cli.options import global_options, read_store
from procctl.cli.render import waiting_text
from procctl.store import StoreContract
from procctl.store.records import CheckpointRecord, EventRecord, InstanceRecord, Status

#: history events shown unless --history says otherwise
HISTORY = 20
HISTORY_COLUMNS = (plain.Column(("TIME", "TIME")), plain.Column(("EVENT",)),
                   plain.Column(("STEP",)), plain.Column(("DETAIL",), free=True, least=30))
HISTORY_SHRINK = (("short", "TIME"), ("drop", "DETAIL"))


class Shown:
    """What `show` reads from the store: the instance, its checkpoint, the child it waits
    for, and its history (the last `limit` events, or all: limit None) with the count."""

    def __init__(self, store: StoreContract, instance_id: str, limit: int | None) -> None:
        self.record: InstanceRecord = store.get_instance(instance_id)
        self.checkpoint: CheckpointRecord | None = store.find_checkpoint(self.record.id)
        self.child = waiting_for(self.record, store.get_instance)
        self.total = store.count_events(self.record.id)
        self.expects: list[Any] | None = None  # the fields a resume must send
        if self.checkpoint is not None and self.child is None and self.record.status in (
                Status.PAUSED, Status.FAILED):
            self.expects = _expected(store, self.record, self.checkpoint)
        self.events: list[EventRecord] = (store.events(self.record.id) if limit is None
                                          else store.last_events(self.record.id, limit))


def _expected(store: StoreContract, record: InstanceRecord,
              checkpoint: CheckpointRecord) -> list[Any] | None:
    """The payload fields the instance's checkpoint expects (cli/payload_hints.py); None
    when its definition cannot be read by this procctl."""
    from procctl.agent.errors import DefinitionError
    from procctl.cli import payload_hints
    from procctl.store.errors import NotFound

    try:
        definition = payload_hints.pinned_definition(store, record.definition_sha256)
    except (DefinitionError, NotFound):
        return None
    return payload_hints.expected_fields(definition, checkpoint.step_id)


def history_limit(text: str) -> int | None:
    """--history: a number of events, or `all` (None)."""
    if text == "all":
        return None
    if text.isdigit():
        return int(text)
    raise typer.BadParameter(f"{text!r} is neither a number of events nor `all`",
                             param_hint="--history")


def show_command(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(help="Instance ID (a unique prefix will do).")],
    history: Annotated[str, typer.Option(
        "--history", metavar="N|all", help=f"Show the last N history events (default "
        f"{HISTORY}), or all of them.")] = str(HISTORY),
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print JSON for scripts (with the whole history).")] = False,
) -> None:
    """Show one instance: status, params, result or error, how to resume it, its history."""
    limit = None if as_json else history_limit(history)
    options = global_options(ctx)
    shown = read_store(options.home, lambda store: Shown(store, instance_id, limit))
    record, checkpoint, child = shown.record, shown.checkpoint, shown.child
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
    events = [{"at": e.at, "kind": e.kind, "step_id": e.step_id, "step_path": e.step_path,
               "data": json.loads(e.data_json)} for e in shown.events]
    if as_json:
        render.print_json({**summary, "history": events})
        return
    render.print_pairs(_pairs(summary, checkpoint, child, options.home, shown.expects))
    render.print_line("")
    if shown.total > len(events):
        render.print_line(f"History (the last {len(events)} of {shown.total} events; "
                          "--history all shows every one)")
    else:
        render.print_line("History")
    if events:
        _print_history(events)


def _pairs(summary: dict[str, Any], checkpoint: CheckpointRecord | None,
           child: dict[str, Any] | None, home: HomePaths,
           expects: list[Any] | None) -> list[plain.Pair]:
    """The `Name  value` lines: plain text, data neutralised."""
    text = render.neutralise
    pairs = [
        plain.Pair("Instance", summary["instance_id"]),
        plain.Pair("Process", text(f"{summary['process']} {summary['version'] or ''}".strip())),
        plain.Pair("Status", summary["status"],
                   render.STATUS_STYLES.get(summary["status"], "white")),
        plain.Pair("Started", render.short_time(summary["started_at"])),
        plain.Pair("Ended", render.short_time(summary["ended_at"])),
        plain.Pair("Params", render.value_text(summary["params"])),
    ]
    if summary.get("parent_id"):
        pairs.append(plain.Pair("Parent", text(
            f"{summary['parent_id']} (this instance runs a call step of it: procctl show "
            f"{summary['parent_id']})")))
    if summary["status"] == Status.COMPLETED:
        pairs.append(plain.Pair("Result", render.value_text(summary["result"])))
    if summary["error"]:
        error = summary["error"]
        where = f" (step {error['step_id']})" if error.get("step_id") else ""
        pairs.append(plain.Pair("Error", text(f"{error.get('message')}{where}"), "red"))
    if checkpoint is not None:
        pairs += [
            plain.Pair("Checkpoint", text(
                f"{checkpoint.step_id} at {summary['position']}, "
                f"iteration {checkpoint.iteration}, {checkpoint.size} bytes")),
            plain.Pair("Correlation ID", text(checkpoint.correlation_id), wrap=False),
            plain.Pair("Expires", render.until(checkpoint.expires_at)),
            plain.Pair("Next resume", render.until(checkpoint.resume_at)),
            plain.Pair("Stored", render.value_text(summary["stored_variables"])),
        ]
    if child is not None:
        pairs.append(plain.Pair("Waiting for", waiting_text(child)))
    elif "resume_command" in summary:
        from procctl.cli import payload_hints
        from procctl.cli.commands.paused import signals_directory

        line = summary["resume_command"]
        if expects is not None:
            line = payload_hints.resume_line(checkpoint.correlation_id if checkpoint else "",
                                             expects)
            pairs.append(plain.Pair("Expects", text(payload_hints.fields_text(expects))))
        pairs += [
            plain.Pair("Resume", text(line), wrap=False),
            plain.Pair("or drop", "\n".join([
                text(json.dumps(summary["signal_file"])),
                "as NAME.json (write NAME.tmp, then rename it) into",
                text(str(signals_directory(home)))]), wrap=False),
        ]
    from procctl.cli.payload_hints import missing_payload_field

    missing = missing_payload_field(summary)
    if missing is not None:  # a retry resumes with no payload: it would fail the same way
        pairs.append(plain.Pair("Retry", f"would fail the same way (no payload field "
                                         f"{text(repr(missing))}): resume it with the field"))
    elif "retry_command" in summary:  # failed, or held by on_crash = "hold"
        how = ("from its checkpoint, through the recover block" if checkpoint is not None
               else "from the beginning, with the same params")
        pairs.append(plain.Pair("Retry", text(f"{summary['retry_command']}  ({how})")))
    elif summary["status"] == Status.FAILED and (summary["error"] or {}).get("kind") == "expired":
        pairs.append(plain.Pair("Retry", "cannot be retried: its checkpoint expired and the "
                                         "snapshot is gone; run the process again with "
                                         "procctl run"))
    return pairs


def _detail(event: dict[str, Any]) -> str:
    """An event's DETAIL cell: on one line, control characters neutralised (a value
    keeps its JSON layout, made one line)."""
    data = event["data"]
    kind = event["kind"]
    if kind == "intermediate_return":
        value = data.get("value")
        return render.neutralise(value if isinstance(value, str) else json.dumps(
            value, ensure_ascii=False, default=str))
    if kind == "step_finished":
        return f"{data.get('duration', 0):.2f}s"
    if kind == "child_started":
        return render.neutralise(f"child instance {data.get('instance_id')}")
    if kind == "branch_taken":
        taken = data.get("branch") or ", ".join(data.get("branches", []))
        return render.neutralise(f"took {taken or 'no branch'}")
    detail = data.get("message") or data.get("error") or ""
    if isinstance(detail, dict):
        detail = detail.get("message", "")
    return render.neutralise(str(detail))


def _print_history(events: list[dict[str, Any]]) -> None:
    cells: list[list[plain.Cell]] = [
        [(render.short_time(event["at"]), render.compact_time(event["at"])),
         render.neutralise(event["kind"]), render.neutralise(event["step_id"] or ""),
         _detail(event)] for event in events]
    render.print_table(HISTORY_COLUMNS, cells, shrink=HISTORY_SHRINK)
