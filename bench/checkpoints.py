"""procctl's checkpoint and signal figures beside the disk's raw limits, as ratios.

    python bench/checkpoints.py            # about 25 s on a quiet machine
    python bench/checkpoints.py --quick    # about 13 s
    python bench/checkpoints.py --json     # every figure as one JSON object
    python bench/checkpoints.py --pg-throwaway           # and on PostgreSQL, 1 and 3 agents
    python bench/checkpoints.py --store-url postgresql://...   # ... on your server

In a temporary home it measures, in one run and on one file system, procctl's own
figures from a real agent (`procctl agent run`, agent_workloads.py, read from the
instances' history), each beside its raw limit measured at the same moments (in slices
between its runs, just before and after it, or one sample after each of its own):
SQLite WAL + synchronous=FULL commit loops (raw_limits.py) and the signal floor
(signal_floor.py); then the time to encode a nested 100 KB snapshot (encode_time.py).
It prints each procctl figure beside its limit and issue 11's target (targets.py), then
the rest. With --store-url (or --pg-throwaway) it then runs the checkpoint workloads of
(a) on that PostgreSQL server, with one agent and with three (pg_workloads.py), beside
SQLite's from the same run and beside the server's raw commit loops (pg_limits.py).
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_workloads import LARGE_PAD, SMALL_PAD, Bench, machine_facts, parse_at, throughput_json
from encode_time import time_encode
from figures import spread
from pg_figures import comparisons
from pg_limits import BenchSetupError
from pg_report import print_postgres
from raw_limits import RawLoop, RawStore, Slices, beside, measure
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

#: signals for each of PostgreSQL's signal latencies (at most: --quick has fewer)
PG_SIGNALS = 100

_STARTED = time.perf_counter()


def note(text: str) -> None:
    """Progress, on stderr (stdout holds the report or the JSON)."""
    print(f"  .. {time.perf_counter() - _STARTED:5.1f} s  {text}", file=sys.stderr,
          flush=True)


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


def postgres_server(args: argparse.Namespace,
                    stack: contextlib.ExitStack) -> tuple[str, str]:
    """The URL of the bench's own database on the server, and where that server is (for
    the report); both torn down by `stack`."""
    from pg_limits import bench_database, throwaway_server

    from procctl.store.urls import redacted

    if args.store_url:
        server_url, where = args.store_url, redacted(args.store_url)
    else:
        note("PostgreSQL: starting a throwaway cluster")
        server_url = stack.enter_context(throwaway_server())
        where = f"a throwaway cluster (tests/pg_server.py): {server_url}"
    return stack.enter_context(bench_database(server_url, keep=args.keep)), where


def postgres(plan: Plan, workdir: Path, url: str, where: str) -> dict[str, Any]:
    """The PostgreSQL figures, after SQLite's: the same workloads of (a) with one agent
    and with three, and the comparisons with SQLite's figures and the raw limits."""
    from pg_workloads import run_postgres

    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    pg = run_postgres(url, workdir, (plan.raw_small, plan.raw_large, plan.raw_batch),
                      single=plan.single, repeats=plan.repeats, instances=plan.instances,
                      each_small=plan.each_small, each_large=plan.each_large,
                      warm_up=plan.warm_up, signals=min(plan.signals, PG_SIGNALS),
                      note=note)
    load_after = os.getloadavg()[0]
    pg["server"]["where"] = where
    pg["run"] = {"seconds": time.perf_counter() - began, "load_before": load_before,
                 "load_after": load_after,
                 "busy": max(load_before, load_after) > (os.cpu_count() or 1)}
    return pg


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
    parser.add_argument("--store-url", metavar="URL", default=None,
                        help="also run the checkpoint workloads on this PostgreSQL server "
                             "(a libpq URL or key=value settings; the bench creates a "
                             "database of its own there and drops it afterwards)")
    parser.add_argument("--pg-throwaway", action="store_true",
                        help="the same on a throwaway PostgreSQL cluster started for the "
                             "run, as the tests start one (tests/pg_server.py)")
    args = parser.parse_args()
    if args.store_url and args.pg_throwaway:
        parser.error("--store-url and --pg-throwaway: give one of them")
    if args.commits and (args.store_url or args.pg_throwaway):
        parser.error("--commits measures the SQLite store only; leave out --store-url "
                     "and --pg-throwaway")
    if args.commits:
        commits_only(args)
        return
    plan = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="procctl-bench-", dir=args.dir))
    try:
        with contextlib.ExitStack() as stack:
            server = None
            if args.store_url or args.pg_throwaway:
                # The server first: a bad URL fails before the SQLite part runs.
                server = postgres_server(args, stack)
            figures = run(plan, workdir, args.quick)
            if server is not None:
                pg = postgres(plan, workdir, *server)
                pg["comparisons"] = comparisons(figures["procctl"], pg)
                figures["postgresql"] = pg
    except BenchSetupError as exc:
        sys.exit(f"bench: {exc}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_report(figures)
        if "postgresql" in figures:
            print_postgres(figures["postgresql"], figures["procctl"])


if __name__ == "__main__":
    main()
