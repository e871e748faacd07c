"""How long procctl takes to encode a snapshot holding a nested ~100 KB value.

The value is a list of order-like records: strings, ints, floats, booleans, a datetime,
a list of tags and a nested dict holding a list of dicts (five levels from the list to
the innermost values). It is stored as one variable of a `procctl.agent.snapshot.Snapshot`
and encoded with `snapshot.dumps`, the call every checkpoint makes; only the module's
public API is used. The standard library's `json.dumps` of the same plain value (its
datetime written with `str`) is timed beside it, for reference.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from procctl.agent import snapshot as snapshots


def _record(number: int) -> dict[str, Any]:
    return {
        "id": number,
        "name": f"order-{number:05d}",
        "price": round(number * 1.37 + 0.25, 2),
        "paid": number % 3 == 0,
        "placed": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=number),
        "tags": ["priority" if number % 7 == 0 else "normal", f"region-{number % 5}"],
        "detail": {
            "customer": {"name": f"Customer {number}", "email": f"c{number}@example.org",
                         "score": number / 10},
            "lines": [{"sku": f"SKU-{number}-{line}", "quantity": line + 1,
                       "unit": 2.5 * (line + 1), "notes": None}
                      for line in range(3)],
        },
    }


def nested_value(target_bytes: int = 100_000) -> list[dict[str, Any]]:
    """Records until the plain JSON of the list reaches `target_bytes`."""
    records: list[dict[str, Any]] = []
    size = 2
    while size < target_bytes:
        record = _record(len(records))
        records.append(record)
        size += len(json.dumps(record, default=str, separators=(",", ":"))) + 1
    return records


def snapshot_of(value: Any) -> snapshots.Snapshot:
    """A snapshot of a paused instance whose one variable is `value`."""
    return snapshots.Snapshot(
        instance_id="0123456789ab", process_name="bench-encode", process_version=None,
        definition_sha256="0" * 64, checkpoint_id="save", hydration_point="save",
        correlation_id="encode-1", position=(snapshots.Frame("steps", 1),),
        variables={"orders": value}, results={}, iteration=0,
        original_start_utc="2026-01-01T00:00:00+00:00", trigger_id="bench",
        created_at="2026-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class EncodeTimes:
    value_bytes: int  # the plain value's JSON
    snapshot_bytes: int  # snapshot.dumps' output, UTF-8
    runs: int
    snapshot_median: float  # seconds
    snapshot_min: float
    json_median: float
    json_min: float
    round_trip: bool  # snapshot.loads gives the value back

    def to_json(self) -> dict[str, float | int | bool]:
        return {"value_bytes": self.value_bytes, "snapshot_bytes": self.snapshot_bytes,
                "runs": self.runs,
                "snapshot_dumps_median_ms": self.snapshot_median * 1000,
                "snapshot_dumps_min_ms": self.snapshot_min * 1000,
                "json_dumps_median_ms": self.json_median * 1000,
                "json_dumps_min_ms": self.json_min * 1000,
                "round_trip": self.round_trip}


def _timings(call: Callable[[], object], runs: int) -> list[float]:
    call()  # not measured: first-call costs
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def time_encode(runs: int, target_bytes: int = 100_000) -> EncodeTimes:
    """`runs` encodings of each kind, interleaved in blocks so load hits both alike."""
    value = nested_value(target_bytes)
    snapshot = snapshot_of(value)
    encoded = snapshots.dumps(snapshot)
    text = encoded if isinstance(encoded, str) else bytes(encoded).decode()
    plain = json.dumps(value, default=str, separators=(",", ":"))
    mine: list[float] = []
    stdlib: list[float] = []
    block = max(1, runs // 10)
    while len(mine) < runs:
        count = min(block, runs - len(mine))
        mine += _timings(lambda: snapshots.dumps(snapshot), count)
        stdlib += _timings(lambda: json.dumps(value, default=str, separators=(",", ":")),
                           count)
    round_trip = snapshots.loads(encoded).variables == {"orders": value}
    return EncodeTimes(len(plain.encode()), len(text.encode()), runs,
                       statistics.median(mine), min(mine),
                       statistics.median(stdlib), min(stdlib), round_trip)
