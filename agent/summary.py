"""The plain-JSON view of an instance that `run --wait`, `show` and `list` print."""

from __future__ import annotations

import json
from typing import Any

from procctl.agent import values
from procctl.store import InstanceRecord


def instance_summary(record: InstanceRecord) -> dict[str, Any]:
    return {
        "instance_id": record.id,
        "process": record.process_name,
        "version": record.process_version,
        "status": record.status,
        "params": values.to_plain(values.loads(record.params_json)),
        "result": values.to_plain(values.loads(record.result_json)),
        "error": json.loads(record.error_json) if record.error_json else None,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
    }
