"""`procctl resume --correlation-id ID`: drop a signal file, then (by default) follow it.

It goes the same way as any signal (the signals directory), so it works while the
agent is down: the signal waits in the directory and is applied when it starts. Before
it writes, it checks what it can (cli/commands/resume_checks.py): the signal_id, the
file's size, and that an instance is paused at the correlation ID.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from procctl.agent import bounded_json
from procctl.agent.atomic import write_bytes_atomically
from procctl.agent.client import AgentClient
from procctl.agent.config import load_config
from procctl.agent.errors import UsageError
from procctl.agent.signals import encode_document
from procctl.cli import render
from procctl.cli.commands.resume_checks import (
    SignalRefused,
    check_signal_id,
    check_size,
    refusal,
)
from procctl.cli.options import global_options
from procctl.cli.outcome import EXIT_INSTANCE_FAILED, print_outcome
from procctl.cli.payload_hints import refusal_hint
from procctl.cli.signal_send import await_signal, signal_path
from procctl.store.clock import utc_now
from procctl.store.records import SignalStatus, Status

EXIT_SIGNAL_REFUSED = 7


def _pairs(pairs: list[str], option: str) -> dict[str, Any]:
    """name=value pairs; a value that parses as JSON is taken as JSON, else as text."""
    found: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{option} {pair!r} is not name=value",
                             hint=f"write {option} approved=true")
        try:
            found[name.strip()] = bounded_json.loads(text)
        except json.JSONDecodeError:
            found[name.strip()] = text
        except bounded_json.JSONLimit as exc:
            raise UsageError(f"{option} {name.strip()}: {exc}") from None
    return found


def resume_command(
    ctx: typer.Context,
    correlation_id: Annotated[str, typer.Option(
        "--correlation-id", "-c", help="The correlation ID of the paused instance.")],
    data: Annotated[list[str] | None, typer.Option(
        "--data", "-d", help="A payload field as name=value (JSON or text; repeatable).")] = None,
    payload_file: Annotated[Path | None, typer.Option(
        "--payload-file", help="A JSON file with the payload.")] = None,
    set_values: Annotated[list[str] | None, typer.Option(
        "--set", help="Change a stored variable before resuming: name=value.")] = None,
    signal_id: Annotated[str | None, typer.Option(
        "--signal-id", help="An ID that makes a repeated resume harmless.")] = None,
    pending: Annotated[bool, typer.Option(
        "--pending", help="Send it even when no instance is paused at the correlation ID "
        "now: it is held until one pauses there (for signal_buffer).")] = False,
    no_wait: Annotated[bool, typer.Option(
        "--no-wait", help="Return once the signal is written.")] = False,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Seconds to wait for the agent to take the signal.")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Resume a paused instance (or retry a failed one) by its correlation ID."""
    options = global_options(ctx)
    payload: dict[str, Any] = {}
    if payload_file is not None:
        try:
            loaded = bounded_json.loads(payload_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"payload file {payload_file} does not exist") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"payload file {payload_file}:{exc.lineno}: not JSON: "
                             f"{exc.msg}") from None
        except bounded_json.JSONLimit as exc:
            raise UsageError(f"payload file {payload_file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"payload file {payload_file} must hold a JSON object")
        payload.update(loaded)
    payload.update(_pairs(data or [], "--data"))
    edits = _pairs(set_values or [], "--set")
    if signal_id is not None:
        check_signal_id(signal_id)
    given_id, signal_id = signal_id, signal_id or uuid.uuid4().hex
    document: dict[str, Any] = {"correlation_id": correlation_id, "payload": payload,
                                "signal_id": signal_id, "sender": "procctl resume"}
    if edits:
        document["set"] = edits
    settings = load_config(options.home.config)
    data_bytes = encode_document(document)
    check_size(len(data_bytes), int(settings["max_signal_bytes"]))
    refused = None if pending else refusal(options.home, correlation_id)
    if refused is not None:
        if as_json:
            render.print_json({"signal": {
                "signal_id": given_id, "correlation_id": correlation_id, "status": "refused",
                "reason": refused.message, "instance_id": refused.instance_id,
                "did_you_mean": refused.did_you_mean}})
        raise SignalRefused(refused.message, refused.hint)
    path = signal_path(options.home, settings, signal_id)
    written_at = utc_now()
    client = AgentClient(options.home)
    running = not no_wait and client.is_running()
    if not running:
        write_bytes_atomically(path, data_bytes)
        queued = {"signal": {"signal_id": signal_id, "correlation_id": correlation_id,
                             "status": "queued", "file": str(path)}}
        if as_json:
            render.print_json(queued)
        else:
            render.console.print(f"Signal {render.safe_text(signal_id)} written to "
                                 f"{render.safe_text(path)}")
            if not no_wait:
                render.note("No agent is running for this home: the signal is applied when "
                            "it starts (procctl agent start).")
        return
    outcome = await_signal(
        client, signal_id, path.name, written_at, timeout, quiet=as_json,
        on_outcome=None if as_json else lambda signal: _header(signal, correlation_id),
        write=lambda: write_bytes_atomically(path, data_bytes))
    header_printed = outcome.pop("header_printed", False)
    if as_json:
        render.print_json(outcome)
    else:
        _print(outcome, correlation_id, header_printed=header_printed)
    signal = outcome.get("signal") or {}
    if signal.get("status") in (SignalStatus.REJECTED, SignalStatus.DUPLICATE):
        raise typer.Exit(EXIT_SIGNAL_REFUSED)
    instance = outcome.get("instance") or {}
    if instance.get("status") == Status.FAILED:
        raise typer.Exit(EXIT_INSTANCE_FAILED)


def _header(signal: dict[str, Any], correlation_id: str) -> None:
    render.console.print(f"Resumed instance [bold]{render.safe_text(signal['instance_id'])}[/] "
                         f"({render.safe_text(correlation_id)})")


def _print(outcome: dict[str, Any], correlation_id: str, *, header_printed: bool) -> None:
    signal = outcome["signal"]
    status = signal["status"]
    if status == SignalStatus.APPLIED:
        instance = outcome.get("instance")
        if not header_printed:
            _header(signal, correlation_id)
        if instance:
            print_outcome(instance)
    elif status == SignalStatus.PENDING:
        render.console.print(
            f"Held pending: no instance is paused at {render.safe_text(repr(correlation_id))} "
            f"yet; the signal is delivered when one pauses (until {signal['hold_until']}).")
    else:
        render.error(f"not resumed: {signal['reason']}",
                     refusal_hint(signal.get("reason"), correlation_id)
                     or "procctl list-paused shows the paused instances and their "
                        "correlation IDs")
