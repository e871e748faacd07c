"""The human report of bench/checkpoints.py, printed from the same figures as --json."""

from __future__ import annotations

from typing import Any

from agent_workloads import SMALL_PAD
from figures import size_text, table
from targets import Target, issue_targets, median_shares, targets_table


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def print_header(figures: dict[str, Any]) -> None:
    info = figures["run"]
    print(f"procctl checkpoint bench ({info['kind']} run, {info['seconds']:.1f} s)\n")
    for key, value in figures["machine"].items():
        print(f"  {key:<8} {value}")
    print(f"  {'load':<8} {info['load_before']:.2f} before, {info['load_after']:.2f} after "
          "(1-minute load average: other work on the machine shares its cores)")


def print_limits(figures: dict[str, Any]) -> None:
    print("\nRaw limits: a SQLite file beside the home (WAL, synchronous=FULL, Python's "
          "sqlite3), each\nmeasured at the same moments as the procctl figure it limits; "
          "the WAL was first grown\nto "
          f"{size_text(figures['raw']['wal_bytes'])}\n")
    rows = []
    names = (("single_1kb", "1 KB row per commit"), ("single_100kb", "100 KB row per commit"),
             ("batch_100x1kb", "100 x 1 KB rows per commit"))
    for key, name in names:
        for loop in figures["raw"][key]:
            when = loop["when"]
            rows.append([name, when, str(loop["commits"]), f"{loop['commits_per_s']:,.0f}",
                         f"{loop['rows_per_s']:,.0f}", _ms(loop["commit_p50_ms"]),
                         _ms(loop["commit_p99_ms"])])
    print(table(["loop", "when", "commits", "commits/s", "rows/s", "commit p50",
                 "commit p99"], rows))
    print("\nSignal floor: rename -> watchdog event -> read, JSON-decode, one durable commit\n")
    print(table(["when", "samples", "p50", "p99", "max"],
                [[f["when"], f"{f['samples']:.0f}", _ms(f["p50_ms"]), _ms(f["p99_ms"]),
                  _ms(f["max_ms"])]
                 for f in figures["signal_floor"]]))


def print_throughput(figures: dict[str, Any]) -> None:
    mine = figures["procctl"]
    rows = [mine[k] for k in ("one_instance_1kb", "one_instance_100kb",
                              "many_instances_1kb", "many_instances_100kb")]
    print("\n(a) checkpoints committed per second "
          "(checkpoint_saved events, first to last, from the history)\n")
    print(table(
        ["workload", "how", "checkpoints", "snapshot", "span", "ckpt/s", "ckpt p50",
         "ckpt p99", "events/ckpt", "run --wait"],
        [[r["label"], ("1 run" if r["runs"] == 1 else f"{r['runs']} in turn")
          if r["instances"] == 1 else "at once",
          str(r["checkpoints"]), size_text(r["snapshot_bytes"]), f"{r['span_s']:.2f} s",
          f"{r['checkpoints_per_s']:.0f}", _ms(r["interval_p50_ms"]),
          _ms(r["interval_p99_ms"]), f"{r['events_per_checkpoint']:.1f}",
          "-" if r["run_wait_s"] is None else f"{r['run_wait_s']:.2f} s"] for r in rows]))
    print("  ckpt p50/p99: from one checkpoint_saved event of an instance to its next")
    print(f"  `procctl show {mine['first_instance']} --json` gives the same checkpoint_saved "
          "count and first and last times for the first run: "
          f"{'yes' if mine['show_cross_check'] else 'NO'}")
    for r in rows:
        if r["instances"] > 1:
            print(f"  {r['label']}: {r['overlap']} of {r['instances']} instances had saved "
                  "their first checkpoint before any instance saved its last")
    growth = mine["growth"]
    print(f"\n  checkpoint-only loop body ({growth['iterations']} iterations, "
          f"{SMALL_PAD} B variable): snapshot {size_text(growth['first'])} at the first "
          f"checkpoint, {size_text(growth['last'])} at the last "
          f"({size_text(growth['total'])} written in all)")


def print_signal(figures: dict[str, Any]) -> None:
    stages = figures["procctl"]["signal"]
    count = int(stages["next_step_started"]["samples"])
    print(f"\n(b) signal file renamed into the signals directory -> next step started "
          f"({count} paused instances, one signal at a time)\n")
    names = (("signal_applied", "rename -> signal_applied"),
             ("instance_resumed", "rename -> instance_resumed"),
             ("next_step_started", "rename -> next step_started"))
    print(table(["stage", "median", "p99", "max"],
                [[name, _ms(stages[k]["p50_ms"]), _ms(stages[k]["p99_ms"]),
                  _ms(stages[k]["max_ms"])] for k, name in names]))
    if count < 100:
        print(f"  (with {count} samples the p99 is the largest sample)")


def print_commits(checkpoints: dict[str, Any], signals: dict[str, Any]) -> None:
    print("\n(c) durable commits (write transactions the agent's store committed)\n")
    print(f"  per checkpoint:      {checkpoints['per_checkpoint']:.2f}  (a run of "
          f"{checkpoints['small']} checkpoints took {checkpoints['commits'][0]} commits, "
          f"one of {checkpoints['large']} took {checkpoints['commits'][1]})")
    print(f"  per applied signal:  {signals['per_applied']:.2f}  ({signals['commits']} "
          f"commits for {signals['signals']} signals, each to its instance's end; less "
          f"{signals['completed']} completions: {signals['per_signal']:.2f} per signal "
          "with it)")


def print_encode(figures: dict[str, Any]) -> None:
    e = figures["encode"]
    print(f"\n(d) snapshot encoding: a nested {size_text(e['value_bytes'])} value "
          f"(snapshot {size_text(e['snapshot_bytes'])}), {e['runs']} runs each\n")
    print(table(["encoder", "median", "min"],
                [["procctl snapshot.dumps", _ms(e["snapshot_dumps_median_ms"]),
                  _ms(e["snapshot_dumps_min_ms"])],
                 ["json.dumps (stdlib, plain value)", _ms(e["json_dumps_median_ms"]),
                  _ms(e["json_dumps_min_ms"])]]))
    print(f"  snapshot.loads gives the value back: {'yes' if e['round_trip'] else 'NO'}")


def print_targets(targets: list[Target]) -> None:
    print("\nTargets (issue 11): procctl beside its limit measured in this run (of a limit "
          "measured\nbefore and after, the better)\n")
    print(targets_table(targets))
    missed = sum(not t.met for t in targets)
    print(f"  {len(targets) - missed} of {len(targets)} met")


def print_medians(figures: dict[str, Any]) -> None:
    print("  a second reading, one instance at the median (a few slow commits do not move "
          "it):\n  raw commit p50 / checkpoint p50")
    for share in median_shares(figures):
        print(f"    {share['figure']:<20} {share['raw_commit_p50_ms']:.2f} ms / "
              f"{share['checkpoint_p50_ms']:.2f} ms = {share['share'] * 100:.1f} %")


def print_busy(figures: dict[str, Any]) -> None:
    info = figures["run"]
    if info["busy"]:
        print(f"  note: the load average ({info['load_before']:.1f} before, "
              f"{info['load_after']:.1f} after) exceeded the cores: other work\n"
              "  shared the disk and the CPU, and limits and figures measured a moment "
              "apart drift;\n  run again on a quieter machine")


def print_report(figures: dict[str, Any]) -> None:
    print_header(figures)
    print_limits(figures)
    print_throughput(figures)
    print_signal(figures)
    commits = figures["procctl"]["commits"]
    print_commits(commits["per_checkpoint"], commits["per_signal"])
    print_encode(figures)
    print_targets(issue_targets(figures))
    print_medians(figures)
    print_busy(figures)
