"""What the person who resumes a paused instance must send: the payload fields its
checkpoint expects (declared with `expects`, or found in what later steps read), and a
ready-to-paste `procctl resume` line. `show`, `list-paused --wide` and `explain` print
them; the failed-instance hint (cli/outcome.py) too.

The definition model (and Jinja with it) is imported only when a function here is
called: importing this module costs nothing to `list`'s start-up.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procctl.agent.definition.model import Definition, PayloadField
    from procctl.store import StoreContract

__all__ = ["PayloadField", "expected_fields", "fields_text", "missing_field_hint",
           "missing_payload_field", "pinned_definition", "refusal_hint", "resume_line"]

#: a failed expression that read a field the resuming signal's payload lacked:
#: `in "results['wait'].payload.approved": 'dict object' has no attribute 'approved'`
_MISSING_FIELD = re.compile(
    r"""^in (?P<source>["'].*["']): '[^']*' has no attribute '(?P<name>[^']+)'$""", re.S)

#: what `--data NAME=VALUE` gets for each type (a JSON value where the type is not str)
_EXAMPLES = {"bool": "true", "int": "1", "float": "1.5", "str": "TEXT", "list": "[]",
             "dict": "{}", "any": "VALUE"}


def __getattr__(name: str) -> Any:
    if name == "PayloadField":  # the model's, imported when asked for
        from procctl.agent.definition.model import PayloadField
        return PayloadField
    raise AttributeError(name)


def expected_fields(definition: Definition, step_id: str) -> list[PayloadField]:
    """The payload fields checkpoint `step_id` waits for: its `expects` when declared
    (`declared` True), else the fields later steps read (type "any"); [] for a step
    that is no checkpoint, or when nothing reads the payload's fields."""
    from procctl.agent.definition.model import CheckpointStep

    step = next((s for s in definition.all_steps() if s.id == step_id), None)
    if not isinstance(step, CheckpointStep):
        return []
    if step.expects is not None:
        return list(step.expects)
    from procctl.agent.definition.payload_fields import payload_fields_read
    return payload_fields_read(definition, step_id)


def resume_line(correlation_id: str, fields: Sequence[PayloadField]) -> str:
    """`procctl resume --correlation-id ID --data approved=true --data by=TEXT`: the
    required fields with an example value of their type (optional ones left out)."""
    return _line(correlation_id, [(f.name, _EXAMPLES.get(f.type, "VALUE")) for f in fields
                                  if not f.optional])


def _line(correlation_id: str, pairs: Sequence[tuple[str, str]]) -> str:
    parts = ["procctl", "resume", "--correlation-id", shlex.quote(correlation_id)]
    for name, value in pairs:
        parts += ["--data", shlex.quote(f"{name}={value}")]
    return " ".join(parts)


def fields_text(fields: Sequence[PayloadField]) -> str:
    """`approved (bool), by (str), note (str, optional)` for declared fields;
    `approved, by (optional)` for fields found in later steps ("none" when empty)."""
    shown = []
    for field in fields:
        notes = [field.type] if field.declared else []
        if field.optional:
            notes.append("optional")
        shown.append(field.name + (f" ({', '.join(notes)})" if notes else ""))
    return ", ".join(shown) or "none"


def pinned_definition(store: StoreContract, sha256: str) -> Definition:
    """The definition an instance runs, parsed from the store as the agent does
    (agent/definition/pinned.py; imported here when first used: start-up)."""
    from procctl.agent.definition.pinned import pinned_definition as parse

    return parse(store.get_definition, sha256)


def missing_payload_field(summary: dict[str, Any]) -> str | None:
    """The payload field whose absence failed an instance that holds its checkpoint
    (a summary as agent/summary.py makes it), or None for any other failure."""
    error = summary.get("error") or {}
    checkpoint = summary.get("checkpoint") or {}
    if summary.get("status") != "failed" or error.get("kind") != "expression" \
            or not checkpoint.get("correlation_id"):
        return None
    found = _MISSING_FIELD.match(str(error.get("message") or ""))
    if found is None:
        return None
    name, source = found.group("name"), found.group("source")
    if not re.search(rf"""payload(["']\s*\])?\s*(\.|\[\s*["']){re.escape(name)}\b""",
                     source):
        return None
    return name


def missing_field_hint(summary: dict[str, Any]) -> str | None:
    """For an instance that failed on a missing payload field: resume it with the
    field (a retry resumes with no payload, and fails the same way). None otherwise."""
    name = missing_payload_field(summary)
    if name is None:
        return None
    line = _line(str(summary["checkpoint"]["correlation_id"]), [(name, "VALUE")])
    return (f"The signal that resumed it had no payload field {name!r}: send it again with "
            f"the field (a retry would fail the same way): {line}")


#: the end of a refusal by a checkpoint's `expects` (agent/definition/payload_fields.py)
_EXPECTS_TAIL = re.compile(r"\(expects (?P<fields>[^()]*)\)$")


def refusal_hint(reason: str | None, correlation_id: str) -> str | None:
    """For a signal refused because its payload did not fit the checkpoint's `expects`:
    the line that sends one that fits. None for any other refusal."""
    if not reason or not reason.startswith("payload refused by the checkpoint"):
        return None
    found = _EXPECTS_TAIL.search(reason)
    if found is None:
        return None
    pairs = []
    for item in found.group("fields").split(", "):
        name, _, kind = item.rpartition(": ")
        if name and not kind.endswith("?"):
            pairs.append((name, _EXAMPLES.get(kind, "VALUE")))
    return "send a payload that fits, e.g.: " + _line(correlation_id, pairs)
