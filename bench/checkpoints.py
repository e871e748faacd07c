"""procctl's checkpoint and signal figures beside the disk's raw limits, as ratios.

    python bench/checkpoints.py            # about 25 s on a quiet machine
    python bench/checkpoints.py --quick    # about 13 s
    python bench/checkpoints.py --json     # every figure as one JSON object

In a temporary home it measures, in one run and on one file system, procctl's own
figures from a real agent (`procctl agent run`, agent_workloads.py, read from the
instances' history), each beside its raw limit measured at the same moments (in slices
between its runs, just before and after it, or one sample after each of its own):
SQLite WAL + synchronous=FULL commit loops (raw_limits.py) and the signal floor
(signal_floor.py); then the time to encode a nested 100 KB snapshot (encode_time.py).
It prints each procctl figure beside its limit and issue 11's target (targets.py), then
the rest. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent_workloads import LARGE_PAD, SMALL_PAD, Bench, machine_facts, parse_at
from encode_time import time_encode
from figures import spread
from raw_limits import CommitLoop, RawLoop, RawStore, measure, merged
from report import print_commits, print_report
from signal_floor import SignalFloor
from targets import issue_targets, median_shares

KB = 1024


@dataclass(frozen=True)
class Plan:
    single: int  # checkpoints per one-instance run
    repeats: int  # one-instance runs, one after the other
    instances: int  # concurrent instances
    each_small: int  # checkpoints per concurrent instance, ~1 KB
    each_large: int  # ... ~100 KB
    growth: int  # iterations of the checkpoint-only loop
    signals: int  # paused instances resumed one at a time (and signal floor samples)
    warm_up: int  # checkpoints run before measuring
    commit_signals: int  # signals for (c), the commits per signal
    raw_small: RawLoop  # 1 KB rows, one per commit
    raw_large: RawLoop  # 100 KB rows, one per commit
    raw_batch: RawLoop  # 1 KB rows, 100 per commit
    encodes: int  # snapshot encodings timed


FULL = Plan(single=100, repeats=8, instances=50, each_small=60, each_large=16, growth=40,
            signals=400, warm_up=300, commit_signals=100,
            raw_small=RawLoop(KB, 2000), raw_large=RawLoop(100 * KB, 500),
            raw_batch=RawLoop(KB, 100, 100), encodes=200)
QUICK = Plan(single=100, repeats=2, instances=50, each_small=4, each_large=2, growth=15,
             signals=25, warm_up=300, commit_signals=25,
             raw_small=RawLoop(KB, 500), raw_large=RawLoop(100 * KB, 150),
             raw_batch=RawLoop(KB, 30, 100), encodes=50)

_STARTED = time.perf_counter()


def note(text: str) -> None:
    """Progress, on stderr (stdout holds the report or the JSON)."""
    print(f"  .. {time.perf_counter() - _STARTED:5.1f} s  {text}", file=sys.stderr,
          flush=True)


def throughput_json(row: dict[str, Any]) -> dict[str, Any]:
    gaps = row["intervals"]
    return {
        "label": row["label"], "instances": row["instances"], "runs": row["runs"],
        "checkpoints": row["checkpoints"], "snapshot_bytes": row["bytes"],
        "span_s": row["span"], "checkpoints_per_s": row["rate"],
        "events_per_checkpoint": row["events_per_checkpoint"],
        "run_wait_s": row["wall"], "overlap": row["overlap"],
        "interval_p50_ms": statistics.median(gaps) * 1000,
        "interval_p99_ms": spread(gaps)["p99_ms"],
    }


T = TypeVar("T")
L = TypeVar("L")


def beside(limit: Callable[[], L], figure: Callable[[], T]) -> tuple[T, list[L]]:
    """A procctl figure with its limit measured right before and right after it."""
    before = limit()
    result = figure()
    return result, [before, limit()]


class Slices:
    """A raw loop measured in slices between procctl's runs (`take` is the `between`
    hook of Bench.throughput), so that both meet the same moments of the machine."""

    def __init__(self, store: RawStore, loop: RawLoop, slices: int) -> None:
        self.store = store
        self.loop = loop
        self.size = max(1, loop.commits // slices)
        self.taken: list[CommitLoop] = []

    def take(self) -> None:
        if not self.taken:  # unmeasured commits of its own kind first
            self.store.commit_loop(self.loop.row_bytes, max(1, self.loop.commits // 10),
                                   self.loop.rows_per_commit)
        self.taken.append(self.store.commit_loop(self.loop.row_bytes, self.size,
                                                 self.loop.rows_per_commit))

    def result(self) -> list[dict[str, Any]]:
        return [{"when": f"between the runs ({len(self.taken)} slices)",
                 **merged(self.taken).to_json()}]


def run(plan: Plan, workdir: Path, quick: bool) -> dict[str, Any]:
    """Every measurement, in order; the figures as one JSON-able dict."""
    bench = Bench(workdir)
    began = time.perf_counter()
    load_before = os.getloadavg()
    raw_store = RawStore(workdir / "raw-limits.db")  # beside the home: same file system
    try:
        wal_bytes = raw_store.grow_wal()
        with bench.agent():
            note("procctl: warm-up")
            # Not measured: the first commits of a fresh store also grow its WAL file,
            # which costs a metadata sync each; afterwards the WAL's pages are reused.
            bench.submit_and_wait("checkpoints", items=plan.warm_up, pad=SMALL_PAD)
            note("1 instance, ~1 KB, between slices of raw 1 KB commits")
            raw_small = Slices(raw_store, plan.raw_small, plan.repeats + 1)
            one_small = bench.throughput("1 instance, ~1 KB", 1, plan.single, SMALL_PAD,
                                         plan.repeats, between=raw_small.take)
            note("1 instance, ~100 KB, between slices of raw 100 KB commits")
            raw_large = Slices(raw_store, plan.raw_large, plan.repeats + 1)
            one_large = bench.throughput("1 instance, ~100 KB", 1, plan.single, LARGE_PAD,
                                         plan.repeats, between=raw_large.take)
            note(f"{plan.instances} instances, ~1 KB, beside raw 100-row batches")
            many_small, raw_batch = beside(
                lambda: measure(raw_store, plan.raw_batch),
                lambda: bench.throughput(f"{plan.instances} instances, ~1 KB",
                                         plan.instances, plan.each_small, SMALL_PAD))
            note(f"{plan.instances} instances, ~100 KB")
            many_large = bench.throughput(f"{plan.instances} instances, ~100 KB",
                                          plan.instances, plan.each_large, LARGE_PAD)
            growth = bench.growth(plan.growth)
            # The same figures through the command itself, for the first workload.
            shown = [e for e in bench.show_history(one_small["ids"][0])
                     if e["kind"] == "checkpoint_saved"]
            cross_check = (len(shown) == one_small["first_count"]
                           and parse_at(shown[0]["at"]) == one_small["first_at"]
                           and parse_at(shown[-1]["at"]) == one_small["last_at"])
            note("signal latency, each signal followed by a signal floor sample")
            with SignalFloor(workdir / "floor", raw_store.path) as floor:
                latency = bench.signal_latency(plan.signals, between=floor.sample)
            note("commits per checkpoint and per signal")
            durable = (bench.commits_per_checkpoint(50, 250),
                       bench.commits_per_signal(plan.commit_signals))
        note("snapshot encoding")
        encode = time_encode(plan.encodes)
        load_after = os.getloadavg()
    finally:
        raw_store.close()
    figures: dict[str, Any] = {
        "run": {"kind": "quick" if quick else "full",
                "seconds": time.perf_counter() - began,
                "load_before": load_before[0], "load_after": load_after[0],
                "busy": max(load_before[0], load_after[0]) > (os.cpu_count() or 1)},
        "machine": dict(machine_facts(workdir / "home")),
        "raw": {"wal_bytes": wal_bytes,
                "single_1kb": raw_small.result(),
                "single_100kb": raw_large.result(),
                "batch_100x1kb": [{"when": when, **r.to_json()}
                                  for when, r in zip(("before", "after"), raw_batch,
                                                     strict=True)]},
        "signal_floor": [{"when": "after each procctl signal", **spread(floor.latencies)}],
        "procctl": {
            "one_instance_1kb": throughput_json(one_small),
            "one_instance_100kb": throughput_json(one_large),
            "many_instances_1kb": throughput_json(many_small),
            "many_instances_100kb": throughput_json(many_large),
            "show_cross_check": cross_check,
            "first_instance": one_small["ids"][0],
            "growth": growth,
            "signal": {"signal_applied": spread(latency["applied"]),
                       "instance_resumed": spread(latency["resumed"]),
                       "next_step_started": spread(latency["samples"])},
            "commits": {"per_checkpoint": durable[0], "per_signal": durable[1]},
        },
        "encode": encode.to_json(),
    }
    figures["targets"] = [t.to_json() for t in issue_targets(figures)]
    figures["median_shares"] = median_shares(figures)
    return figures


def commits_only(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="procctl-bench-", dir=args.dir))
    bench = Bench(workdir)
    try:
        with bench.agent():
            durable = (bench.commits_per_checkpoint(50, 250),
                       bench.commits_per_signal(QUICK.commit_signals if args.quick
                                                else FULL.commit_signals))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_commits(*durable)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under 20 s")
    parser.add_argument("--json", action="store_true",
                        help="print every figure as one JSON object (progress on stderr)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to make the temporary home (default: the system's "
                             "temporary directory; choose a real disk, not tmpfs)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument("--commits", action="store_true",
                        help="only (c): durable commits per checkpoint and per signal")
    args = parser.parse_args()
    if args.commits:
        commits_only(args)
        return
    workdir = Path(tempfile.mkdtemp(prefix="procctl-bench-", dir=args.dir))
    try:
        figures = run(QUICK if args.quick else FULL, workdir, args.quick)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_report(figures)


if __name__ == "__main__":
    main()
