"""`procctl explain ID`: why an instance is where it is, in a few lines (from the store,
so it works while the agent is down). The facts are agent/explaining.py's; this module
adds what the payload hints know (cli/payload_hints.py) and lays it out within the
terminal's width, with no padding."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from procctl.agent import values
from procctl.agent.durations import format_duration
from procctl.agent.explaining import Explanation, SignalNote, explain
from procctl.agent.paths import HomePaths
from procctl.cli.options import global_options, read_store
from procctl.cli.payload_hints import (
    expected_fields,
    fields_text,
    missing_payload_field,
    resume_line,
)
from procctl.cli.render import neutralise, print_json, short_time

#: the width of the labels' column (a label and two spaces)
LABEL = 12
#: the width when the terminal's is not known
DEFAULT_WIDTH = 80


def explain_command(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(help="Instance ID (a unique prefix will do).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Explain why an instance is where it is: what it waits for, since and until when,
    what a signal must carry, the signals it did not take, and the commands that move
    it on.
    """
    options = global_options(ctx)
    explanation = read_store(options.home, lambda store: explain(store, instance_id))
    signals_dir = _signals_dir(options.home)
    hints = payload_hints(explanation)
    if as_json:
        print_json({**explanation.to_json(), **_hints_json(hints),
                    "commands": commands(explanation, hints),
                    "signals_directory": str(signals_dir)})
        return
    width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    sys.stdout.write("".join(line + "\n" for line in lines(explanation, hints, signals_dir,
                                                           width)))


def _signals_dir(home: HomePaths) -> Path:
    """The home's signals directory, as its agent uses it (the `signals_dir` setting)."""
    from procctl.agent.config import load_config
    from procctl.agent.errors import UsageError

    try:
        setting = str(load_config(home.config)["signals_dir"])
    except UsageError:
        setting = "signals"
    return home.signals_dir(setting)


def payload_hints(explanation: Explanation) -> dict[str, Any]:
    """What a signal to its checkpoint must carry (`expects`: the fields, declared or
    read by later steps) and the ready-to-paste `resume_line`; {} when no signal is
    asked for (or the definition could not be read again)."""
    resumable = explanation.waits_for in ("signal", "clock") or (
        explanation.status == "failed" and explanation.step_id is not None
        and any(c.name == "resume" for c in explanation.commands))
    if not resumable or explanation.definition is None or explanation.step_id is None:
        return {}
    assert explanation.correlation_id is not None
    fields = expected_fields(explanation.definition, explanation.step_id)
    return {"expects": fields, "resume_line": resume_line(explanation.correlation_id, fields)}


def _hints_json(hints: dict[str, Any]) -> dict[str, Any]:
    if not hints:
        return {"expects": None, "resume_line": None}
    return {"expects": [{"name": f.name, "type": f.type, "optional": f.optional,
                         "declared": f.declared} for f in hints["expects"]],
            "resume_line": hints["resume_line"]}


def commands(explanation: Explanation, hints: dict[str, Any]) -> list[dict[str, str]]:
    """The commands that move it on, as JSON: the resume line with the payload's fields
    when they are known; only commands this procctl has. An instance that failed on a
    payload field its signal lacked is resumed with the field first (a retry resumes
    with no payload, and fails the same way)."""
    from procctl.cli.app import COMMANDS

    known = {command.name for command in COMMANDS}
    missing = missing_payload_field({
        "status": explanation.status, "error": explanation.error,
        "checkpoint": {"correlation_id": explanation.correlation_id}})
    out: list[dict[str, str]] = []
    for command in explanation.commands:
        if command.name not in known:
            continue
        shown = command.to_json()
        if command.name == "resume" and hints.get("resume_line"):
            shown["command"] = hints["resume_line"]
        if command.name == "resume" and missing is not None:
            if f"--data {missing}=" not in shown["command"]:
                shown["command"] += " " + shlex.join(("--data", f"{missing}=VALUE"))
            shown["does"] = (f"resume it with the field {missing!r} its signal lacked "
                             "(a retry fails the same way)")
            out.insert(0, shown)
            continue
        out.append(shown)
    return out


# -- layout -----------------------------------------------------------------------------


def lines(explanation: Explanation, hints: dict[str, Any], signals_dir: Path,
          width: int) -> list[str]:
    """The explanation as lines of at most `width` columns (but for a word longer
    than the line: an ID is never broken)."""
    e = explanation
    now = datetime.now(UTC)
    out: list[str] = []

    def add(label: str, text: str) -> None:
        out.extend(_field(label, neutralise(text), width))

    where = f" at {e.step_id}" if e.status == "paused" and e.step_id else ""
    add("Instance", f"{e.instance_id} ({e.process}): {e.status}{where}")
    add("Why", e.reason)
    if e.since:
        add("Ended" if e.waits_for == "nothing" else "Since", _moment(e.since, now))
    if e.parent_id:
        add("Parent", f"{e.parent_id} (this instance runs its call step; it goes on when "
                      "this one ends)")
    if e.owner is not None and e.owner.agent_id is not None:
        lease = (f", lease until {_moment(e.owner.lease_until, now)}"
                 if e.owner.lease_until and e.owner.state != "stopped" else "")
        host = f" on {e.owner.host}" if e.owner.host else ""
        add("Agent", f"{e.owner.agent_id}{host}: {e.owner.state}{lease}")
    overdue = "; overdue: an agent's clock applies it once one runs"
    if e.resume_at:
        add("Resumes", _moment(e.resume_at, now) + (overdue if _past(e.resume_at, now)
                                                    else ""))
    if e.expires_at and e.status in ("paused", "failed"):
        add("Expires", _moment(e.expires_at, now) + (
            overdue + " (or procctl purge-expired)" if _past(e.expires_at, now) else ""))
        add("At expiry", _at_expiry(e))
    if "expects" in hints:
        fields = hints["expects"]
        found = "" if all(f.declared for f in fields) else "read by later steps: "
        add("Expects", (found + fields_text(fields)) if fields else
            "no payload fields: nothing reads them (a payload is optional)")
        add("Signal dir", str(signals_dir))
        out.extend(_field("", "(a signal file there: JSON with correlation_id and payload, "
                              "written as NAME.tmp, then renamed to NAME.json)", width))
    if e.signals_total:
        newest = "" if e.signals_total <= len(e.signals) else f", newest {len(e.signals)}"
        add("Signals", f"{e.signals_total} not applied{newest}:")
        for signal in e.signals:
            out.extend(_field("", neutralise(_signal_text(signal)), width,
                              hanging=LABEL + 2))
    moves = commands(e, hints)
    label = ("Move it on" if any(not c["command"].startswith("procctl show ") for c in moves)
             else "More")
    for number, command in enumerate(moves):
        words = shlex.split(command["command"])
        # data in a command (a correlation ID) cannot reach the terminal as control codes
        block = [neutralise(line) for line in _command(words, "" if number else label,
                                                       width)]
        comment = "# " + neutralise(command["does"])
        if len(block[-1]) + 2 + len(comment) <= width:
            block[-1] += "  " + comment
        else:
            # every line of it a comment, so that the block pastes as it is
            lead = " " * (LABEL + 2) + "# "
            block.extend(line.rstrip() for line in textwrap.wrap(
                neutralise(command["does"]), width=max(width, LABEL + 20),
                initial_indent=lead, subsequent_indent=lead, break_long_words=False,
                break_on_hyphens=False))
        out.extend(block)
    return out


def _field(label: str, text: str, width: int, *, hanging: int = LABEL,
           indent: int = LABEL) -> list[str]:
    """`label` in its column, `text` wrapped beside it (never inside a word)."""
    head = label.ljust(LABEL) if label else ""
    wrapped = textwrap.wrap(text, width=max(width, LABEL + 20),
                            initial_indent=head if label else " " * indent,
                            subsequent_indent=" " * hanging, break_long_words=False,
                            break_on_hyphens=False) or [head.rstrip()]
    return [line.rstrip() for line in wrapped]


def _command(words: list[str], label: str, width: int) -> list[str]:
    """A command to paste, cut only between words, each cut ending in ` \\`. An option
    and its value stay on one line, unless together they do not fit on a line of their
    own."""
    units: list[str] = []
    for word in words:
        quoted = shlex.quote(word)
        if units and units[-1].startswith("--") and " " not in units[-1] \
                and not word.startswith("--"):
            units[-1] += " " + quoted
        else:
            units.append(quoted)
    room = width - LABEL - 4
    units = [part for unit in units
             for part in (unit.split(" ", 1) if len(unit) > room else [unit])]
    out: list[str] = []
    line = (label.ljust(LABEL) if label else " " * LABEL) + units[0]
    for unit in units[1:]:
        if len(line) + 1 + len(unit) + 2 > width:
            out.append(line + " \\")
            line = " " * (LABEL + 2) + unit
        else:
            line += " " + unit
    out.append(line)
    return out


def _at_expiry(e: Explanation) -> str:
    if e.on_expire == "resume":
        payload = json.dumps(values.to_plain(e.expiry_payload), ensure_ascii=False)
        return f"it resumes with the payload {payload} (on_expire = {{ resume = ... }})"
    if e.status == "failed":
        return "its snapshot is discarded: it can no longer be retried"
    return "it fails (error kind expired) and its snapshot is discarded"


def _signal_text(signal: SignalNote) -> str:
    when = short_time(signal.received_at)
    to = (f" to {signal.correlation_id} (a typo?)" if signal.near and signal.correlation_id
          else "")
    what = {"pending": "held", "rejected": "refused"}.get(signal.status, signal.status)
    reason = f": {signal.reason}" if signal.reason else ""
    held = (f" (held until {short_time(signal.hold_until)})"
            if signal.status == "pending" and signal.hold_until else "")
    return f"{when} {what}{to} from {signal.source}{held}{reason}"


def _moment(iso: str, now: datetime) -> str:
    return f"{short_time(iso)} ({_relative(iso, now)})"


def _aware(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _past(iso: str, now: datetime) -> bool:
    return _aware(iso) < now


def _relative(iso: str, now: datetime) -> str:
    seconds = (_aware(iso) - now).total_seconds()
    size = abs(seconds)
    text = f"{size:.0f}s" if size < 60 else format_duration(size)
    return f"in {text}" if seconds >= 0 else f"{text} ago"
