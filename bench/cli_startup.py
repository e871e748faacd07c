"""How long `procctl` takes to start, beside `python -c "import typer, rich"`.

    python bench/cli_startup.py              # 15 runs of each, about 30 s
    python bench/cli_startup.py --runs 31    # more runs, steadier medians
    python bench/cli_startup.py --json       # the same figures as JSON

Issue 11's target: `procctl --help`, `procctl --version` and `procctl list` each take at
most 1.5x the time of `python -c "import typer, rich"` measured in the same run (the
least a typer + rich command line can cost: the interpreter's start-up, its site
packages, and the two libraries).

Every run is a new process started with `subprocess.run` and timed from the parent
(perf_counter before and after: start-up, imports, the command, exit). The cases take
turns, one run of each per round, so a burst of load on the machine falls on all of them
alike; one round before the timed ones warms the file cache and writes the bytecode.
`list` runs on two homes made in a temporary directory (PROCCTL_HOME; no agent: `list`
reads the store directly): an empty store, and one of `--instances` instances (1,000 by
default) made with the store API, half of them completed. Each case runs through the
installed console script (`procctl`) and through `python -m procctl.cli` (procctl has no
top-level `__main__`: `python -m procctl` does not exist).

The machine is shared and noisy: absolute times vary 2x between runs; the ratios to the
baseline, measured in the same run, are what count. The load average is printed before
and after. Where the time goes: `python -X importtime -m procctl.cli list` (and
tests/e2e/test_cli_startup_imports.py, which keeps the heavy modules out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

TARGET = 1.5
PROCCTL = str(Path(sys.executable).parent / "procctl")
BASELINE = "python -c 'import typer, rich'"


@dataclass(frozen=True)
class Case:
    """One command line to time: `argv` run with `home` as PROCCTL_HOME."""

    name: str
    argv: list[str]
    home: Path
    #: what its stdout must hold (the run counts only if it did what it says)
    expect: str


def make_home(home: Path, instances: int) -> None:
    """A home whose store holds `instances` instances (half completed), through the
    store API, as the agent would have left them."""
    from procctl.store import open_store

    home.mkdir(mode=0o700)
    store = open_store(home / "procctl.db")
    try:
        source = '[process]\nname = "bench-list"\n'
        store.put_definition("0" * 64, "bench-list", "1", None, source)
        for number in range(instances):
            instance_id = f"{number:08x}-bench-0000-0000-000000000000"
            store.create_instance(instance_id, "0" * 64, "bench-list", "1",
                                  json.dumps({"n": number}), json.dumps({"kind": "cli"}))
            if number % 2 == 0:
                store.finish_instance(instance_id, "completed",
                                      result_json=json.dumps({"n": number}))
    finally:
        store.close()


def cases(empty: Path, full: Path, instances: int) -> list[Case]:
    """The baseline first, then every procctl command through both entry points."""
    baseline = Case(BASELINE, [sys.executable, "-c", "import typer, rich"], empty, "")
    found: list[Case] = [baseline]
    entries = (("procctl", [PROCCTL]), ("python -m procctl.cli",
                                       [sys.executable, "-m", "procctl.cli"]))
    for label, entry in entries:
        found += [
            Case(f"{label} --help", [*entry, "--help"], empty, "Commands"),
            Case(f"{label} --version", [*entry, "--version"], empty, "procctl "),
            Case(f"{label} list (empty home)", [*entry, "list"], empty, "No instances"),
            Case(f"{label} list ({instances:,} instances)", [*entry, "list"], full,
                 "bench-list"),
        ]
    return found


def run_once(case: Case, env: dict[str, str]) -> float:
    """Seconds from starting `case` to its exit; fails loudly on a wrong result."""
    started = time.perf_counter()
    proc = subprocess.run(case.argv, capture_output=True, text=True, timeout=60,
                          env={**env, "PROCCTL_HOME": str(case.home)},
                          stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or case.expect not in proc.stdout:
        raise SystemExit(f"{case.name} failed (exit {proc.returncode}):\n{proc.stdout}\n"
                         f"{proc.stderr}")
    return elapsed


def measure(all_cases: list[Case], runs: int) -> dict[str, list[float]]:
    """`runs` timed rounds (after one warm-up round), each case once per round."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME")}
    times: dict[str, list[float]] = {case.name: [] for case in all_cases}
    for round_number in range(runs + 1):
        for case in all_cases:
            elapsed = run_once(case, env)
            if round_number:
                times[case.name].append(elapsed)
    return times


def figures(times: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Median and min of each case, and each one's ratio to the baseline's."""
    base_median = statistics.median(times[BASELINE])
    base_min = min(times[BASELINE])
    rows = []
    for name, samples in times.items():
        median, least = statistics.median(samples), min(samples)
        ratio = median / base_median
        rows.append({
            "case": name, "runs": len(samples),
            "median_ms": round(median * 1000, 1), "min_ms": round(least * 1000, 1),
            "ratio_median": round(ratio, 2), "ratio_min": round(least / base_min, 2),
            "target": None if name == BASELINE else TARGET,
            "met": None if name == BASELINE else ratio <= TARGET,
        })
    return rows


def print_table(rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
    print(f"procctl start-up, {facts['runs']} runs of each (a new process every run); "
          f"Python {facts['python']}, typer {facts['typer']}, rich {facts['rich']}")
    print(f"load average before: {facts['load_before']}, after: {facts['load_after']}")
    print()
    width = max(len(row["case"]) for row in rows)
    print(f"{'case':<{width}}  {'median':>8}  {'min':>8}  {'x base':>7}  {'x min':>6}  "
          f"{'target':>6}  met")
    for row in rows:
        target = "-" if row["target"] is None else f"<= {row['target']}"
        met = "-" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(f"{row['case']:<{width}}  {row['median_ms']:>6.1f}ms  {row['min_ms']:>6.1f}ms  "
              f"{row['ratio_median']:>6.2f}x  {row['ratio_min']:>5.2f}x  {target:>6}  {met}")
    print()
    print("x base: median over the baseline's median (the figure the target is about); "
          "x min: fastest run over the baseline's fastest.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each case")
    parser.add_argument("--instances", type=int, default=1000,
                        help="instances in the full home's store")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="procctl-bench-cli-") as tmp:
        empty, full = Path(tmp, "empty"), Path(tmp, "full")
        make_home(empty, 0)
        make_home(full, args.instances)
        load_before = os.getloadavg()
        times = measure(cases(empty, full, args.instances), args.runs)
        load_after = os.getloadavg()
    facts = {
        "runs": args.runs, "python": sys.version.split()[0],
        "typer": version("typer"), "rich": version("rich"),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "instances": args.instances,
    }
    rows = figures(times)
    if args.json:
        print(json.dumps({"facts": facts, "figures": rows}, indent=2))
    else:
        print_table(rows, facts)


if __name__ == "__main__":
    main()
