"""procctl's side of the checkpoint bench: a real agent in a temporary home, the
workloads' definitions, and the figures read back from the instances' history.

Instances are started over the agent's socket with procctl's own client, with the
request `procctl run FILE` sends; every figure comes from the events the agent writes
(their `at` times), the rows `procctl show ID --json` prints.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from figures import spread

from procctl.agent import VERSION, values
from procctl.agent.client import AgentClient
from procctl.agent.paths import HomePaths
from procctl.store import StoreContract, open_store

#: the variable that points an agent and the commands at a PostgreSQL store
STORE_URL_ENV = "PROCCTL_STORE_URL"

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

def parse_at(text: str) -> float:
    """An event's `at` (ISO-8601 UTC) as a Unix time."""
    return datetime.fromisoformat(text).timestamp()


def iso(moment: float) -> str:
    """A Unix time in the agent's form (for the record; comparisons use floats)."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds")


class Bench:
    """One agent in its own home under `workdir`: on the home's SQLite store, or on the
    PostgreSQL store at `store_url` (PROCCTL_STORE_URL in its environment). Without a
    `store_url`, a PROCCTL_STORE_URL of the caller's is not passed on: the home's SQLite
    file is what is measured."""

    def __init__(self, workdir: Path, home: str = "home",
                 store_url: str | None = None) -> None:
        self.workdir = workdir
        self.name = home
        self.store_url = store_url
        self.home = HomePaths.resolve(workdir / home)
        self.env = {k: v for k, v in os.environ.items() if k != STORE_URL_ENV}
        self.env.update({"PROCCTL_HOME": str(self.home.home), "NO_COLOR": "1"})
        if store_url:
            self.env[STORE_URL_ENV] = store_url
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
        log = self.workdir / ("agent.out" if self.name == "home" else f"{self.name}.out")
        with open(log, "wb") as out:
            process = subprocess.Popen([*self.procctl, "agent", "run"], env=self.env,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while not self.client.is_running():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the agent did not start: " + log.read_text())
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

    def clock_offset(self) -> float | None:
        """On a shared store, the seconds the agent adds to its host's clock to stamp
        events with the store's (`clock_offset_seconds` of its status); None on SQLite,
        or when the agent does not report it."""
        if self.store_url is None:
            return None
        value = self.client.request("status").get("clock_offset_seconds")
        return None if value is None else float(value)

    def agent_id(self) -> str:
        """The running agent's ID in the store (`agent_id` of its status)."""
        return str(self.client.request("status")["agent_id"])

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
    def store(self) -> Iterator[StoreContract]:
        """The store, read-only use: the same rows `procctl show --json` prints."""
        store = open_store(self.home.db, url=self.store_url, must_exist=True,
                           read_only=self.store_url is not None)
        try:
            yield store
        finally:
            store.close()

    def wait_status(self, ids: list[str], statuses: set[str], timeout: float) -> None:
        """Until every instance of `ids` has one of `statuses` (polled every 50 ms; an
        instance seen there is not read again, and a poll stops at the first one that is
        not, so that waiting adds little load to the store being measured)."""
        deadline = time.monotonic() + timeout
        pending = list(ids)
        with self.store() as store:
            while True:
                while pending:
                    record = store.get_instance(pending[0])
                    if record.status == "failed" and "failed" not in statuses:
                        raise RuntimeError(f"instance {pending[0]} failed: "
                                           f"{record.error_json}")
                    if record.status not in statuses:
                        break
                    pending.pop(0)
                if not pending:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out waiting for {statuses}: {len(pending)} "
                                       f"of {len(ids)} not yet, {pending[0]} is "
                                       f"{record.status}")
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
                   repeats: int = 1,
                   between: Callable[[], object] | None = None) -> dict[str, Any]:
        """`instances` at once (or, for 1, `repeats` runs one after the other), each
        saving `per_instance` checkpoints. The rate is checkpoints per second of the
        time between the first and the last checkpoint_saved event (for repeats: the
        sum over the runs of (count - 1), over the sum of their spans). `between` (for
        1 instance) is called before each run and after the last: the bench measures
        a slice of the run's raw limit there."""
        walls: list[float] = []
        if instances == 1:
            ids = []
            for _ in range(repeats):
                if between is not None:
                    between()
                # Timed from outside: the request `procctl run --wait` sends, followed to
                # the end (this leaves out the CLI's own start-up, about a second).
                started = time.perf_counter()
                summary = self.submit_and_wait("checkpoints", items=per_instance, pad=pad)
                walls.append(time.perf_counter() - started)
                if summary["status"] != "completed":
                    raise RuntimeError(f"bench instance did not complete: {summary}")
                ids.append(summary["instance_id"])
            if between is not None:
                between()
        else:
            go_at = time.time() + 1.0 + 0.03 * instances
            ids = [self.submit("checkpoints", items=per_instance, pad=pad, go_at=go_at)
                   for _ in range(instances)]
            if time.time() > go_at:
                print(f"  note: submitting took past the gate in {label}", file=sys.stderr)
            self.wait_status(ids, {"completed"}, timeout=600)
        return throughput_figures(label, ids, [self.history(i) for i in ids],
                                  per_instance, walls, concurrent=instances > 1)

    def growth(self, iterations: int) -> dict[str, Any]:
        instance_id = self.submit_and_wait("growth", items=iterations,
                                           pad=SMALL_PAD)["instance_id"]
        sizes = [int(e["data"]["bytes"]) for e in self.history(instance_id)
                 if e["kind"] == "checkpoint_saved"]
        return {"iterations": iterations, "first": sizes[0], "last": sizes[-1],
                "total": sum(sizes)}

    # -- (b) signal file rename -> next step running -------------------------------------

    def signal_latency(self, count: int, between: Callable[[], object] | None = None,
                       via: Bench | None = None, tag: str = "bench") -> dict[str, Any]:
        """`count` paused instances, each resumed by a signal file in turn; `between`
        is called after each (the bench takes a signal floor sample there). The files
        go to this agent's signals directory, or to that of the agent `via` (on a shared
        store, that agent applies the signal and runs the instance on). The signal IDs
        are `<tag>-N`: another call on the same store needs another tag.

        On PostgreSQL the agent that applies the signal stamps its events with the
        store's clock as it estimates it (its host's clock plus an offset measured over
        one round trip, again at each lease renewal): when its status reports that
        offset, the samples are taken back to this host's clock by it, and a sample
        during which the offset changed is left out (`offset_changed`)."""
        ids = [self.submit("signal") for _ in range(count)]
        self.wait_status(ids, {"paused"}, timeout=300)
        stamper = via or self
        directory = Path(stamper.client.request("status")["signals_dir"])
        offset = stamper.clock_offset()
        changed = 0
        samples: list[float] = []
        applied: list[float] = []
        resumed: list[float] = []
        time.sleep(0.5)  # let the agent go idle
        with self.store() as store:
            for number, instance_id in enumerate(ids):
                document = {"correlation_id": f"lat-{instance_id}",
                            "payload": {"n": number}, "signal_id": f"{tag}-{number}"}
                temporary = directory / f"{tag}-{number}.json.tmp"
                temporary.write_text(json.dumps(document), encoding="utf-8")
                renamed_at = time.time()
                os.rename(temporary, directory / f"{tag}-{number}.json")
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
                self.wait_status([instance_id], {"completed"}, timeout=30)
                if offset is not None:  # asked after the sample: the agent was idle
                    now_offset = stamper.clock_offset()
                    if now_offset != offset:
                        offset, changed = now_offset, changed + 1
                        continue
                shift = renamed_at + (offset or 0.0)
                for event in events:
                    if event.kind == "signal_applied":
                        applied.append(parse_at(event.at) - shift)
                    elif event.kind == "instance_resumed":
                        resumed.append(parse_at(event.at) - shift)
                samples.append(started_next - shift)
                if between is not None:
                    between()
        return {"samples": samples, "applied": applied, "resumed": resumed,
                "offset_corrected": offset is not None, "offset_changed": changed}


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
        start and the end of an instance cost cancels out). A run of one checkpoint
        first pins the definition, so that neither measured run pays for it."""
        self.submit_and_wait("checkpoints", items=1, pad=SMALL_PAD)
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


def throughput_figures(label: str, ids: list[str], histories: list[list[dict[str, Any]]],
                       per_instance: int, walls: list[float],
                       concurrent: bool) -> dict[str, Any]:
    """Bench.throughput's figures from the instances' histories: `concurrent` instances
    ran at once (one span across them all), else one after the other (a span per run,
    summed)."""
    instances = len(ids) if concurrent else 1
    saved = [e for h in histories for e in h if e["kind"] == "checkpoint_saved"]
    expected = len(ids) * per_instance
    if len(saved) != expected:
        raise RuntimeError(f"{label}: {len(saved)} checkpoint_saved events, "
                           f"expected {expected}")
    if any("blob" not in e["data"]["variables"] for e in saved):
        raise RuntimeError(f"{label}: a snapshot did not store blob")
    groups = [histories] if concurrent else [[h] for h in histories]
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
    # Per checkpoint: the time from one checkpoint_saved event of an instance to its
    # next (the checkpoint's commit and the steps between two checkpoints).
    gaps: list[float] = []
    for h in histories:
        own_times = [parse_at(e["at"]) for e in h if e["kind"] == "checkpoint_saved"]
        gaps += [b - a for a, b in pairwise(own_times)]
    first = [min(parse_at(e["at"]) for e in h if e["kind"] == "checkpoint_saved")
             for h in histories]
    last = [max(parse_at(e["at"]) for e in h if e["kind"] == "checkpoint_saved")
            for h in histories]
    overlap = sum(1 for f in first if f <= min(last)) if concurrent else 1
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
        "events_per_checkpoint": window_events / len(saved), "intervals": gaps,
    }


def throughput_json(row: dict[str, Any]) -> dict[str, Any]:
    """Bench.throughput's figures as --json gives them."""
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
