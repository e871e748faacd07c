"""Checkpoint throughput and signal-to-resume latency of a real procctl agent.

    python bench/checkpoints.py            # about a minute
    python bench/checkpoints.py --quick    # under 20 seconds

Starts `procctl agent start` in a temporary home (PROCCTL_HOME), runs the workloads
below, reads the figures from the instances' history (the `at` timestamps the agent
writes with each event, the same ones `procctl show ID --json` prints), prints a
table and the machine facts, and stops the agent. See bench/README.md for what each
figure means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from procctl.agent import VERSION, values
from procctl.agent.client import AgentClient
from procctl.agent.paths import HomePaths
from procctl.store import Store

# One instance saves `items` checkpoints in a foreach loop. The body reads `blob` after
# the checkpoint (so liveness stores it in every snapshot) with an `if` whose condition
# is false: its result (null) becomes the iteration's result. Without it, each
# iteration's result would be the checkpoint's result, which carries a copy of the
# stored variables, and the loop frame (which keeps the results so far) would make every
# snapshot one blob larger than the last (see GROWTH_DEFINITION).
# The `gate` sleep holds every instance until `go_at`, so concurrent ones start together.
CHECKPOINT_DEFINITION = """
[process]
name = "bench-checkpoints"

[process.params]
items = "int"
pad = "int"
go_at = { type = "float", default = 0 }

[[steps]]
id = "gate"
task = "sleep"
with = { seconds = "{{ [0, go_at - now().timestamp()] | max }}" }

[[steps]]
id = "fill"
kind = "set"
values = { blob = "{{ 'x' * pad }}" }

[[steps]]
id = "each"
kind = "foreach"
items = "range(items)"
as = "i"

    [[steps.body]]
    id = "save"
    kind = "checkpoint"
    correlation_id = "bench-{{ process.instance_id }}-{{ i }}"
    continue = true

    [[steps.body]]
    id = "use"
    kind = "if"
    condition = "blob == ''"
    then = []

[[steps]]
id = "done"
kind = "return"
value = "{{ blob | length }}"
"""

# The same loop with the checkpoint alone in the body, as a user would first write it.
GROWTH_DEFINITION = """
[process]
name = "bench-growth"

[process.params]
items = "int"
pad = "int"

[[steps]]
id = "fill"
kind = "set"
values = { blob = "{{ 'x' * pad }}" }

[[steps]]
id = "each"
kind = "foreach"
items = "range(items)"
as = "i"

    [[steps.body]]
    id = "save"
    kind = "checkpoint"
    correlation_id = "growth-{{ process.instance_id }}-{{ i }}"
    continue = true

[[steps]]
id = "done"
kind = "return"
value = "{{ blob | length }}"
"""

# Pauses at `wait` until a signal file names it; then runs `next`.
SIGNAL_DEFINITION = """
[process]
name = "bench-signal"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "lat-{{ process.instance_id }}"

[[steps]]
id = "next"
task = "log"
with = { message = "resumed by {{ results['wait'].resumed_by }}" }
"""

SMALL_PAD = 400  # with the rest of the snapshot: about 1 KB
LARGE_PAD = 100_000  # about 100 KB


@dataclass(frozen=True)
class Plan:
    single: int  # checkpoints per one-instance run
    repeats: int  # one-instance runs, one after the other
    instances: int  # concurrent instances
    each_small: int  # checkpoints per concurrent instance, ~1 KB
    each_large: int  # ... ~100 KB
    growth: int  # iterations of the checkpoint-only loop
    signals: int  # paused instances resumed one at a time
    warm_up: int  # checkpoints run before measuring
    commit_signals: int  # signals for (c), the commits per signal


FULL = Plan(single=100, repeats=3, instances=50, each_small=60, each_large=16, growth=40,
            signals=400, warm_up=200, commit_signals=100)
QUICK = Plan(single=40, repeats=1, instances=50, each_small=4, each_large=2, growth=15,
             signals=25, warm_up=50, commit_signals=25)


def parse_at(text: str) -> float:
    """An event's `at` (ISO-8601 UTC) as a Unix time."""
    return datetime.fromisoformat(text).timestamp()


def iso(moment: float) -> str:
    """A Unix time in the agent's form (for the record; comparisons use floats)."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds")


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


class Bench:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.home = HomePaths.resolve(workdir / "home")
        self.env = {**os.environ, "PROCCTL_HOME": str(self.home.home), "NO_COLOR": "1"}
        self.procctl = self._procctl_command()
        self.client = AgentClient(self.home)
        self.files: dict[str, Path] = {}
        for name, text in (("checkpoints", CHECKPOINT_DEFINITION),
                           ("growth", GROWTH_DEFINITION), ("signal", SIGNAL_DEFINITION)):
            path = workdir / f"bench-{name}.toml"
            path.write_text(text.lstrip(), encoding="utf-8")
            self.files[name] = path

    @staticmethod
    def _procctl_command() -> list[str]:
        beside = Path(sys.executable).parent / "procctl"
        if beside.exists():
            return [str(beside)]
        found = shutil.which("procctl")
        return [found] if found else [sys.executable, "-m", "procctl.cli"]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.procctl, *args], env=self.env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise RuntimeError(f"procctl {' '.join(args)} -> {proc.returncode}\n"
                               f"{proc.stdout}{proc.stderr}")
        return proc

    @contextmanager
    def agent(self) -> Iterator[None]:
        """`procctl agent run` in the background (this script owns the process); stopped
        at the end the way `procctl agent stop` does it."""
        self.home.ensure()
        with open(self.workdir / "agent.out", "wb") as out:
            process = subprocess.Popen([*self.procctl, "agent", "run"], env=self.env,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while not self.client.is_running():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the agent did not start: "
                                       + (self.workdir / "agent.out").read_text())
                time.sleep(0.05)
            yield
        finally:
            if process.poll() is None:
                with suppress(Exception):
                    self.client.request("stop")
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    # -- submitting and reading ------------------------------------------------------

    def submit(self, name: str, **params: Any) -> str:
        """Start an instance over the agent's socket: the request `procctl run` sends."""
        path = self.files[name]
        data = self.client.request(
            "run", source=path.read_text(encoding="utf-8"), file=str(path),
            base_dir=str(path.parent), params=values.encode(params), wait=False)
        return str(data["instance_id"])

    def submit_and_wait(self, name: str, **params: Any) -> dict[str, Any]:
        """The same with `wait`: the agent streams the events, then the summary."""
        path = self.files[name]
        summary: dict[str, Any] = {}
        for kind, data in self.client.stream(
                "run", source=path.read_text(encoding="utf-8"), file=str(path),
                base_dir=str(path.parent), params=values.encode(params), wait=True):
            if kind == "result":
                summary = data
        return summary

    @contextmanager
    def store(self) -> Iterator[Store]:
        """The store, read-only use: the same rows `procctl show --json` prints."""
        store = Store(self.home.db, must_exist=True)
        try:
            yield store
        finally:
            store.close()

    def wait_status(self, ids: list[str], statuses: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.store() as store:
            while True:
                states = [store.get_instance(i).status for i in ids]
                if all(s in statuses for s in states):
                    bad = [i for i, s in zip(ids, states, strict=True) if s == "failed"]
                    if bad and "failed" not in statuses:
                        raise RuntimeError(f"instance {bad[0]} failed: "
                                           f"{store.get_instance(bad[0]).error_json}")
                    return
                if "failed" in states:
                    failed = ids[states.index("failed")]
                    raise RuntimeError(f"instance {failed} failed: "
                                       f"{store.get_instance(failed).error_json}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out waiting for {statuses}: {states[:5]}...")
                time.sleep(0.05)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        with self.store() as store:
            return [{"at": e.at, "kind": e.kind, "step_id": e.step_id,
                     "data": json.loads(e.data_json)} for e in store.events(instance_id)]

    def show_history(self, instance_id: str) -> list[dict[str, Any]]:
        """Through the command itself, `procctl show ID --json`."""
        history: list[dict[str, Any]] = json.loads(
            self.cli("show", instance_id, "--json").stdout)["history"]
        return history

    # -- (a) checkpoint throughput ---------------------------------------------------

    def throughput(self, label: str, instances: int, per_instance: int, pad: int,
                   repeats: int = 1) -> dict[str, Any]:
        """`instances` at once (or, for 1, `repeats` runs one after the other), each
        saving `per_instance` checkpoints. The rate is checkpoints per second of the
        time between the first and the last checkpoint_saved event (for repeats: the
        sum over the runs of (count - 1), over the sum of their spans)."""
        walls: list[float] = []
        if instances == 1:
            ids = []
            for _ in range(repeats):
                # Timed from outside: the request `procctl run --wait` sends, followed to
                # the end (this leaves out the CLI's own start-up, about a second).
                started = time.perf_counter()
                summary = self.submit_and_wait("checkpoints", items=per_instance, pad=pad)
                walls.append(time.perf_counter() - started)
                if summary["status"] != "completed":
                    raise RuntimeError(f"bench instance did not complete: {summary}")
                ids.append(summary["instance_id"])
        else:
            go_at = time.time() + 1.0 + 0.03 * instances
            ids = [self.submit("checkpoints", items=per_instance, pad=pad, go_at=go_at)
                   for _ in range(instances)]
            if time.time() > go_at:
                print(f"  note: submitting took past the gate in {label}", file=sys.stderr)
            self.wait_status(ids, {"completed"}, timeout=600)
        histories = [self.history(i) for i in ids]
        saved = [e for h in histories for e in h if e["kind"] == "checkpoint_saved"]
        expected = len(ids) * per_instance
        if len(saved) != expected:
            raise RuntimeError(f"{label}: {len(saved)} checkpoint_saved events, "
                               f"expected {expected}")
        if any("blob" not in e["data"]["variables"] for e in saved):
            raise RuntimeError(f"{label}: a snapshot did not store blob")
        groups = [histories] if instances > 1 else [[h] for h in histories]
        spans: list[float] = []
        intervals = 0
        window_events = 0
        for group in groups:
            times = sorted(parse_at(e["at"]) for h in group for e in h
                           if e["kind"] == "checkpoint_saved")
            spans.append(times[-1] - times[0])
            intervals += len(times) - 1
            window_events += sum(1 for h in group for e in h
                                 if times[0] <= parse_at(e["at"]) <= times[-1])
        first = [min(parse_at(e["at"]) for e in h if e["kind"] == "checkpoint_saved")
                 for h in histories]
        last = [max(parse_at(e["at"]) for e in h if e["kind"] == "checkpoint_saved")
                for h in histories]
        overlap = sum(1 for f in first if f <= min(last)) if instances > 1 else 1
        sizes = [int(e["data"]["bytes"]) for e in saved]
        span = sum(spans)
        own = [e for e in histories[0] if e["kind"] == "checkpoint_saved"]
        return {
            "label": label, "ids": ids, "first_at": first[0], "last_at": last[0],
            "first_count": len(own),
            "instances": instances, "checkpoints": len(saved), "runs": len(groups),
            "bytes": statistics.median(sizes), "span": span,
            "rate": intervals / span if span > 0 else float("inf"),
            "wall": statistics.mean(walls) if walls else None, "overlap": overlap,
            "events_per_checkpoint": window_events / len(saved),
        }

    def growth(self, iterations: int) -> dict[str, Any]:
        instance_id = self.submit_and_wait("growth", items=iterations,
                                           pad=SMALL_PAD)["instance_id"]
        sizes = [int(e["data"]["bytes"]) for e in self.history(instance_id)
                 if e["kind"] == "checkpoint_saved"]
        return {"iterations": iterations, "first": sizes[0], "last": sizes[-1],
                "total": sum(sizes)}

    # -- (b) signal file rename -> next step running -------------------------------------

    def signal_latency(self, count: int) -> dict[str, Any]:
        ids = [self.submit("signal") for _ in range(count)]
        self.wait_status(ids, {"paused"}, timeout=300)
        directory = Path(self.client.request("status")["signals_dir"])
        samples: list[float] = []
        applied: list[float] = []
        resumed: list[float] = []
        time.sleep(0.5)  # let the agent go idle
        with self.store() as store:
            for number, instance_id in enumerate(ids):
                document = {"correlation_id": f"lat-{instance_id}",
                            "payload": {"n": number}, "signal_id": f"bench-{number}"}
                temporary = directory / f"bench-{number}.json.tmp"
                temporary.write_text(json.dumps(document), encoding="utf-8")
                renamed_at = time.time()
                os.rename(temporary, directory / f"bench-{number}.json")
                deadline = time.monotonic() + 30
                started_next = None
                while started_next is None:
                    time.sleep(0.01)
                    events = store.events(instance_id)
                    for event in events:
                        if event.kind == "step_started" and event.step_id == "next":
                            started_next = parse_at(event.at)
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"signal {number} ({iso(renamed_at)}) did not "
                                           f"resume {instance_id} within 30 s")
                for event in events:
                    if event.kind == "signal_applied":
                        applied.append(parse_at(event.at) - renamed_at)
                    elif event.kind == "instance_resumed":
                        resumed.append(parse_at(event.at) - renamed_at)
                samples.append(started_next - renamed_at)
                self.wait_status([instance_id], {"completed"}, timeout=30)
        return {"samples": samples, "applied": applied, "resumed": resumed}


    # -- (c) durable commits ------------------------------------------------------------

    def commits(self) -> int:
        """Write transactions the agent's store has committed (`store_commits` in the
        agent's status: a count the store keeps as each COMMIT returns)."""
        deadline = time.monotonic() + 60
        while (count := self.client.request("status")["store_commits"]) is None:
            if time.monotonic() > deadline:  # the store is opened at the agent's start
                raise RuntimeError("the agent's store did not open within 60 s")
            time.sleep(0.05)
        return int(count)

    def commits_per_checkpoint(self, small: int, large: int) -> dict[str, Any]:
        """One instance saves `small`, then another `large` checkpoints; the commits of
        the second run less those of the first, over the extra checkpoints (what the
        start and the end of an instance cost cancels out)."""
        counts = []
        for items in (small, large):
            before = self.commits()
            self.submit_and_wait("checkpoints", items=items, pad=SMALL_PAD)
            counts.append(self.commits() - before)
        return {"small": small, "large": large, "commits": counts,
                "per_checkpoint": (counts[1] - counts[0]) / (large - small)}

    def commits_per_signal(self, count: int) -> dict[str, Any]:
        """`count` instances paused at a checkpoint, resumed by a signal file one at a
        time (each runs to its end before the next signal): the commits from the first
        signal to the last completion, per signal; and the same less one commit per
        instance that completed (counted in the store), the completion's own."""
        ids = [self.submit("signal") for _ in range(count)]
        self.wait_status(ids, {"paused"}, timeout=300)
        directory = Path(self.client.request("status")["signals_dir"])
        time.sleep(0.5)  # let the agent go idle
        before = self.commits()
        for number, instance_id in enumerate(ids):
            document = {"correlation_id": f"lat-{instance_id}",
                        "payload": {"n": number}, "signal_id": f"commits-{number}"}
            temporary = directory / f"commits-{number}.json.tmp"
            temporary.write_text(json.dumps(document), encoding="utf-8")
            os.rename(temporary, directory / f"commits-{number}.json")
            self.wait_status([instance_id], {"completed"}, timeout=30)
        total = self.commits() - before
        with self.store() as store:
            completed = sum(store.get_instance(i).status == "completed" for i in ids)
        return {"signals": count, "commits": total, "per_signal": total / count,
                "completed": completed, "per_applied": (total - completed) / count}


def machine_facts(home: Path) -> list[tuple[str, str]]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    filesystem = "?"
    try:
        best = ""
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            if str(home).startswith(mount) and len(mount) > len(best):
                best, filesystem = mount, f"{kind} ({device} on {mount})"
    except OSError:
        pass
    return [
        ("cores", f"{os.cpu_count()} ({cpu})"),
        ("system", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("sqlite", f"{sqlite3.sqlite_version} (WAL, synchronous=FULL)"),
        ("procctl", VERSION),
        ("home", f"{home} on {filesystem}"),
    ]


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(lines)


def size_text(size: float) -> str:
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size:.0f} B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under 20 s")
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
    plan = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="procctl-bench-", dir=args.dir))
    bench = Bench(workdir)
    began = time.perf_counter()
    try:
        with bench.agent():
            # Not measured: the first commits of a fresh store also grow its WAL file,
            # which costs a metadata sync each; afterwards the WAL's pages are reused.
            bench.submit_and_wait("checkpoints", items=plan.warm_up, pad=SMALL_PAD)
            load_before = os.getloadavg()
            rows = [
                bench.throughput("1 instance, ~1 KB", 1, plan.single, SMALL_PAD,
                                 plan.repeats),
                bench.throughput("1 instance, ~100 KB", 1, plan.single, LARGE_PAD,
                                 plan.repeats),
                bench.throughput(f"{plan.instances} instances, ~1 KB", plan.instances,
                                 plan.each_small, SMALL_PAD),
                bench.throughput(f"{plan.instances} instances, ~100 KB", plan.instances,
                                 plan.each_large, LARGE_PAD),
            ]
            growth = bench.growth(plan.growth)
            # The same figures through the command itself, for the first workload.
            shown = [e for e in bench.show_history(rows[0]["ids"][0])
                     if e["kind"] == "checkpoint_saved"]
            cross_check = (len(shown) == rows[0]["first_count"]
                           and parse_at(shown[0]["at"]) == rows[0]["first_at"]
                           and parse_at(shown[-1]["at"]) == rows[0]["last_at"])
            load_after = os.getloadavg()
            latency = bench.signal_latency(plan.signals)
            durable = (bench.commits_per_checkpoint(50, 250),
                       bench.commits_per_signal(plan.commit_signals))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - began

    print(f"procctl checkpoint bench ({'quick' if args.quick else 'full'} run, "
          f"{elapsed:.1f} s)\n")
    for key, value in machine_facts(workdir / "home"):
        print(f"  {key:<8} {value}")
    print(f"  {'load':<8} {load_before[0]:.2f} before, {load_after[0]:.2f} after (1-minute "
          "load average: other work on the machine shares its cores)")
    print("\n(a) checkpoints committed per second "
          "(checkpoint_saved events, first to last, from the history)\n")
    print(table(
        ["workload", "how", "checkpoints", "snapshot", "span", "ckpt/s", "events/ckpt",
         "run --wait"],
        [[r["label"], ("1 run" if r["runs"] == 1 else f"{r['runs']} in turn")
          if r["instances"] == 1 else "at once",
          str(r["checkpoints"]), size_text(r["bytes"]),
          f"{r['span']:.2f} s",
          f"{r['rate']:.0f}", f"{r['events_per_checkpoint']:.1f}",
          "-" if r["wall"] is None else f"{r['wall']:.2f} s"] for r in rows]))
    print(f"  `procctl show {rows[0]['ids'][0]} --json` gives the same checkpoint_saved count "
          f"and first and last times for the first run: {'yes' if cross_check else 'NO'}")
    concurrent = [r for r in rows if r["instances"] > 1]
    for r in concurrent:
        print(f"  {r['label']}: {r['overlap']} of {r['instances']} instances had saved "
              "their first checkpoint before any instance saved its last")
    print(f"\n  checkpoint-only loop body ({growth['iterations']} iterations, "
          f"{SMALL_PAD} B variable): snapshot {size_text(growth['first'])} at the first "
          f"checkpoint, {size_text(growth['last'])} at the last "
          f"({size_text(growth['total'])} written in all)")
    samples = latency["samples"]
    print(f"\n(b) signal file renamed into the signals directory -> next step started "
          f"({len(samples)} paused instances, one signal at a time)\n")
    stages = [("rename -> signal_applied", latency["applied"]),
              ("rename -> instance_resumed", latency["resumed"]),
              ("rename -> next step_started", samples)]
    print(table(["stage", "median", "p99", "max"],
                [[name, f"{statistics.median(s) * 1000:.1f} ms",
                  f"{percentile(s, 0.99) * 1000:.1f} ms", f"{max(s) * 1000:.1f} ms"]
                 for name, s in stages]))
    if len(samples) < 100:
        print(f"  (with {len(samples)} samples the p99 is the largest sample)")
    print_commits(*durable)


def print_commits(checkpoints: dict[str, Any], signals: dict[str, Any]) -> None:
    print("\n(c) durable commits (write transactions the agent's store committed)\n")
    print(f"  per checkpoint:      {checkpoints['per_checkpoint']:.2f}  (a run of "
          f"{checkpoints['small']} checkpoints took {checkpoints['commits'][0]} commits, "
          f"one of {checkpoints['large']} took {checkpoints['commits'][1]})")
    print(f"  per applied signal:  {signals['per_applied']:.2f}  ({signals['commits']} "
          f"commits for {signals['signals']} signals, each to its instance's end; less "
          f"{signals['completed']} completions: {signals['per_signal']:.2f} per signal "
          "with it)")


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


if __name__ == "__main__":
    main()
