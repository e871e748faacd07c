"""Snapshot encode and decode of a nested ~100 KB value, and freezing a loop's frame.

Prints, in the same run: the time to write a snapshot holding the value as one
variable (snapshot.dumps) beside the version-1 way (values.encode, then json.dumps,
reimplemented here) and beside orjson.dumps of the bare value (the floor); the same
for reading (snapshot.loads); and the time to freeze a foreach frame of 1,000 items
and values so far, beside the deepcopy version 1 made at every checkpoint. Each figure
is the best of 5 rounds of this process's CPU time (time.process_time, so that time
spent waiting for a core on a shared machine does not count); the ratios are what
count.

    python bench/snapshot_encode.py [--size BYTES] [--json]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from procctl.agent import snapshot as snapshots
from procctl.agent import values
from procctl.agent.engine.loop import LoopRun
from procctl.agent.snapshot import Frame, Snapshot

TARGET_MS = 0.3


def nested(size: int, *, nulls: bool, typed: bool) -> list[dict[str, Any]]:
    """Records of nested objects, lists, text, numbers (and None, dates, decimals)
    until the JSON is `size` bytes."""
    out: list[dict[str, Any]] = []
    length = 2
    while length < size:
        i = len(out)
        record: dict[str, Any] = {
            "id": i, "name": f"item-{i}", "price": i * 1.25, "tags": ["a", "b", str(i)],
            "owner": {"name": "Ada", "email": f"a{i}@example.org", "active": i % 2 == 0,
                      "address": {"city": "Oslo", "zip": str(1000 + i)}},
            "note": None if nulls and i % 5 == 0 else "ok",
        }
        if typed:
            record["due"] = date(2026, 1, 1 + i % 28)
            record["amount"] = Decimal(f"{i}.50")
            record["at"] = datetime(2026, 1, 1, 12, i % 60, tzinfo=UTC)
        out.append(record)
        length += len(values.dumps(record)) + 1
    return out


def snapshot_of(value: Any, position: tuple[Frame, ...] = (Frame("steps", 0),)) -> Snapshot:
    return Snapshot(
        instance_id="0123456789ab", process_name="bench", process_version=None,
        definition_sha256=hashlib.sha256(b"bench").hexdigest(), checkpoint_id="cp",
        hydration_point="steps[0]",
        correlation_id="bench-1", position=position, variables={"data": value},
        results={}, iteration=0, original_start_utc="2026-11-26T02:16:15.975829+00:00",
        trigger_id="cli", created_at="2026-11-26T02:16:17.037763+00:00", extra={})


def version_1_dumps(snapshot: Snapshot) -> str:
    """snapshot.dumps as version 1 wrote it: a Python walk (values.encode), then json."""
    document = {
        "format": snapshots.FORMAT, "version": 1, "instance_id": snapshot.instance_id,
        "process": {"name": snapshot.process_name, "version": snapshot.process_version},
        "definition_sha256": snapshot.definition_sha256,
        "checkpoint_id": snapshot.checkpoint_id, "hydration_point": snapshot.hydration_point,
        "correlation_id": snapshot.correlation_id,
        "position": [{"block": f.block, "index": f.index} for f in snapshot.position],
        "variables": values.encode(snapshot.variables),
        "results": values.encode(snapshot.results), "iteration": snapshot.iteration,
        "original_start_utc": snapshot.original_start_utc, "trigger_id": snapshot.trigger_id,
        "created_at": snapshot.created_at, "extra": values.encode(snapshot.extra),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def version_1_loads(text: str) -> Any:
    document = json.loads(text)
    return values.decode(document["variables"])


def best_ms(work: Callable[[], Any], budget: float = 0.4) -> float:
    """Best of 5 rounds of CPU time, each as many calls as fit in `budget` seconds (at
    least 5)."""
    work()
    started = time.process_time()
    for _ in range(5):
        work()
    once = max((time.process_time() - started) / 5, 1e-6)
    calls = max(5, int(budget / 5 / once))
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(calls):
            work()
        best = min(best, (time.process_time() - started) / calls)
    return best * 1000


def measure(size: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"size": size, "load": os.getloadavg()[0], "values": {}}
    for label, nulls, typed in (("no null", False, False), ("with nulls", True, False),
                                ("nulls, dates, decimals", True, True)):
        value = nested(size, nulls=nulls, typed=typed)
        snap = snapshot_of(value)
        text = snapshots.dumps(snap)
        text_v1 = version_1_dumps(snap)
        assert snapshots.loads(text) == snap
        figures["values"][label] = {
            "bytes": len(text.encode()),
            "encode_ms": best_ms(lambda s=snap: snapshots.dumps(s)),
            "encode_v1_ms": best_ms(lambda s=snap: version_1_dumps(s)),
            "orjson_ms": best_ms(lambda v=value: orjson.dumps(v, default=str)),
            "decode_ms": best_ms(lambda t=text: snapshots.loads(t)),
            "decode_v1_ms": best_ms(lambda t=text_v1: version_1_loads(t)),
        }
    items = tuple(nested(100_000, nulls=True, typed=False))
    run = LoopRun(items, len(items) - 1, {"item": "outer"}, list(items[:-1]))
    as_dict = {"items": list(items), "index": run.index, "results": run.results,
               "shadowed": dict(run.shadowed)}
    figures["freeze"] = {
        "items": len(items),
        "freeze_ms": best_ms(run.frozen),
        "deepcopy_v1_ms": best_ms(lambda: copy.deepcopy(as_dict)),
    }
    return figures


def print_figures(figures: dict[str, Any]) -> None:
    print(f"snapshot of a nested ~{figures['size'] // 1000} KB value "
          f"(load {figures['load']:.1f}; CPU ms, best of 5; target encode <= {TARGET_MS} ms)")
    print(f"{'value':<24}{'bytes':>8}{'encode':>9}{'v1':>9}{'v1/now':>8}{'orjson':>9}"
          f"{'decode':>9}{'v1':>9}{'v1/now':>8}  target")
    for label, f in figures["values"].items():
        met = "met" if f["encode_ms"] <= TARGET_MS else "NOT met"
        print(f"{label:<24}{f['bytes']:>8}{f['encode_ms']:>8.3f}m{f['encode_v1_ms']:>8.3f}m"
              f"{f['encode_v1_ms'] / f['encode_ms']:>7.1f}x{f['orjson_ms']:>8.3f}m"
              f"{f['decode_ms']:>8.3f}m{f['decode_v1_ms']:>8.3f}m"
              f"{f['decode_v1_ms'] / f['decode_ms']:>7.1f}x  {met}")
    frozen = figures["freeze"]
    print(f"freeze a foreach frame of {frozen['items']} items and values so far: "
          f"{frozen['freeze_ms']:.3f} ms; version 1's deepcopy: {frozen['deepcopy_v1_ms']:.3f} ms "
          f"({frozen['deepcopy_v1_ms'] / frozen['freeze_ms']:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="bytes of JSON (100000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = measure(args.size)
    print_figures(figures)
    if args.json:
        print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
