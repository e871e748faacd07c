"""Plain-JSON views of instances and signals, as `run --wait`, `show`, `list` and
`resume` print them."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

from procctl.agent import values
from procctl.agent.calls import called_child
from procctl.store import InstanceRecord
from procctl.store.records import CheckpointRecord, SignalRecord, Status


def resume_command(correlation_id: str) -> str:
    return f"procctl resume --correlation-id {shlex.quote(correlation_id)}"


def instance_summary(record: InstanceRecord,
                     checkpoint: CheckpointRecord | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "instance_id": record.id,
        "process": record.process_name,
        "version": record.process_version,
        "status": str(record.status),
        "params": values.to_plain(values.loads(record.params_json)),
        "result": values.to_plain(values.loads(record.result_json)),
        "error": json.loads(record.error_json) if record.error_json else None,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "correlation_id": record.correlation_id,
        "checkpoint": None,
        "parent_id": record.parent_id,
    }
    if checkpoint is not None:
        summary["checkpoint"] = {
            "step_id": checkpoint.step_id,
            "correlation_id": checkpoint.correlation_id,
            "iteration": checkpoint.iteration,
            "saved_at": checkpoint.created_at,
            "expires_at": checkpoint.expires_at,
            "resume_at": checkpoint.resume_at,
            "bytes": checkpoint.size,
        }
        if record.status in (Status.PAUSED, Status.FAILED):
            summary["resume_command"] = resume_command(checkpoint.correlation_id)
        if record.status == Status.FAILED:
            summary["retry_command"] = f"procctl retry {record.id}"
    if record.status == Status.PAUSED:
        summary["paused_at"] = record.paused_at
        if checkpoint is None:  # held by on_crash = "hold"
            summary["retry_command"] = f"procctl retry {record.id}"
    elif record.status == Status.FAILED and "retry_command" not in summary \
            and (summary["error"] or {}).get("kind") != "expired":  # its snapshot is gone
        summary["retry_command"] = f"procctl retry {record.id}"
    return summary


def waiting_for(record: InstanceRecord,
                get_instance: Callable[[str], InstanceRecord]) -> dict[str, Any] | None:
    """For an instance paused at a `call` (correlation ID `call:CHILD`): the instance at
    the end of the chain of paused children, the one a person or a signal resumes."""
    if record.status != Status.PAUSED or called_child(record.correlation_id) is None:
        return None
    chain: list[str] = []
    current = record
    while current.status == Status.PAUSED and len(chain) < 50:
        child_id = called_child(current.correlation_id)
        if child_id is None:
            break
        current = get_instance(child_id)
        chain.append(current.id)
    found: dict[str, Any] = {"child_id": chain[0], "instance_id": current.id,
                             "process": current.process_name, "status": str(current.status),
                             "correlation_id": current.correlation_id, "chain": chain}
    if current.status == Status.PAUSED and current.correlation_id:
        found["resume_command"] = resume_command(current.correlation_id)
    return found


def signal_summary(record: SignalRecord) -> dict[str, Any]:
    return {
        "signal_id": record.signal_id,
        "correlation_id": record.correlation_id,
        "status": str(record.status),
        "reason": record.reason,
        "instance_id": record.instance_id,
        "source": record.source,
        "received_at": record.received_at,
        "hold_until": record.hold_until,
        "payload": values.to_plain(values.loads(record.payload_json)),
    }
