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
top-level `__main__`: `python -m procctl` does not exist). Output goes to a pipe, as in a
script; `list (terminal)` writes to a pseudo-terminal 160 columns wide instead, where the
table has its colours (procctl writes the bytes rich would, without rich, on both:
cli/plain.py). Besides wall time, each run's CPU time (user + system, from the kernel's
accounting of the child) is shown: it varies less with the machine's load.

The machine is shared and noisy: absolute times vary 2x between runs; the ratios to the
baseline, measured in the same run, are what count. The load average is printed before
and after. Where the time goes: `python -X importtime -m procctl.cli list` (and
tests/e2e/test_cli_startup_imports.py, which keeps the heavy modules out).

Figures of 2026-12-02 (2 cores shared with six other sessions, load 5-9, 21 runs):
--help and --version 1.06-1.20x the baseline (was 2.2x); list 1.39-1.63x (was 2.9-3.9x),
on a pipe or a terminal alike. What list spends beyond the baseline (~30 ms, timed
in-process): the store's modules ~15 ms (procctl.store.sqlite and what it imports ~10,
store.records' seven frozen dataclasses ~5), reading the store ~4 ms, typer building the
command ~3 ms, procctl's CLI modules ~3 ms.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
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
    #: stdout is a terminal (a pseudo-terminal 160 columns wide), not a pipe
    terminal: bool = False


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
    found.append(Case(f"procctl list ({instances:,} instances, terminal)", [PROCCTL, "list"],
                      full, "bench-list", terminal=True))
    return found


def on_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `argv` with stdout on a pseudo-terminal 160 columns wide; its exit code and
    what it wrote there."""
    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=child_fd,
                            stderr=subprocess.DEVNULL, env=env)
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def run_once(case: Case, env: dict[str, str]) -> tuple[float, float]:
    """Seconds from starting `case` to its exit, and the CPU seconds (user + system) it
    used; fails loudly on a wrong result."""
    env = {**env, "PROCCTL_HOME": str(case.home)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    if case.terminal:
        code, out, err = *on_terminal(case.argv, {**env, "TERM": "xterm-256color"}), ""
    else:
        proc = subprocess.run(case.argv, capture_output=True, text=True, timeout=60, env=env,
                              stdin=subprocess.DEVNULL)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0 or case.expect not in out:
        raise SystemExit(f"{case.name} failed (exit {code}):\n{out}\n{err}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def measure(all_cases: list[Case], runs: int) -> dict[str, list[tuple[float, float]]]:
    """`runs` timed rounds (after one warm-up round), each case once per round: the
    (wall, CPU) seconds of every run."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME")}
    times: dict[str, list[tuple[float, float]]] = {case.name: [] for case in all_cases}
    for round_number in range(runs + 1):
        for case in all_cases:
            measured = run_once(case, env)
            if round_number:
                times[case.name].append(measured)
    return times


def figures(times: dict[str, list[tuple[float, float]]]) -> list[dict[str, Any]]:
    """Median and min of each case's wall time, its median CPU time, and each one's
    ratio to the baseline's."""
    def summary(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
        walls = [wall for wall, _ in samples]
        return (statistics.median(walls), min(walls),
                statistics.median(cpu for _, cpu in samples))

    base_median, base_min, base_cpu = summary(times[BASELINE])
    rows = []
    for name, samples in times.items():
        median, least, cpu = summary(samples)
        ratio = median / base_median
        rows.append({
            "case": name, "runs": len(samples),
            "median_ms": round(median * 1000, 1), "min_ms": round(least * 1000, 1),
            "cpu_median_ms": round(cpu * 1000, 1),
            "ratio_median": round(ratio, 2), "ratio_min": round(least / base_min, 2),
            "ratio_cpu": round(cpu / base_cpu, 2),
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
    print(f"{'case':<{width}}  {'median':>8}  {'min':>8}  {'cpu':>8}  {'x base':>7}  "
          f"{'x min':>6}  {'x cpu':>6}  {'target':>6}  met")
    for row in rows:
        target = "-" if row["target"] is None else f"<= {row['target']}"
        met = "-" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(f"{row['case']:<{width}}  {row['median_ms']:>6.1f}ms  {row['min_ms']:>6.1f}ms  "
              f"{row['cpu_median_ms']:>6.1f}ms  {row['ratio_median']:>6.2f}x  "
              f"{row['ratio_min']:>5.2f}x  {row['ratio_cpu']:>5.2f}x  {target:>6}  {met}")
    print()
    print("median, min: wall time from start to exit; cpu: median user + system time. "
          "x base: median over the baseline's median (the figure the target is about); "
          "x min: fastest run over the baseline's fastest; x cpu: CPU medians (steadier "
          "on a loaded machine).")


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
