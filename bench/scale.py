"""A million paused instances at no cost: what N paused instances cost a real agent and
the CLI, each figure beside its target (issue 11).

    python bench/scale.py                     # 1,000,000 paused (builds ~4 GB once: minutes)
    python bench/scale.py --quick             # 100,000 paused, a 15 s idle window
    python bench/scale.py --dir /var/tmp --keep          # build there, keep it afterwards
    python bench/scale.py --reuse /var/tmp/procctl-scale-XXXX   # measure a kept one again

The store is built, not run: one real instance of `scale.toml` (below) is run by a real
agent to its checkpoint and paused; its rows (the instance, its checkpoint with the
snapshot the engine wrote, its history events) are then copied N times through the
store's tables in big transactions, each copy with its own ID, order, correlation ID
(`scale-0000042`), times and snapshot. A share of them (a tenth, 100,000 at a million)
paused 31 to 40 days ago and is past its 30-day TTL: the purge's work. The build checks
that one copy resumes to completion with `procctl resume --correlation-id`. A kept
build is measured again with `--reuse`, topped up first to N paused and the expired
share (a purge and the probes use some up). See docs/scale.md for the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from procctl.agent.client import AgentClient
from procctl.agent.paths import HomePaths

PROCCTL = str(Path(sys.executable).parent / "procctl")
DEFINITION = """\
# bench/scale.py: asks for an approval and waits for it, for up to 30 days.
[process]
name = "scale"
version = "1"

[process.params.order]
type = "str"

[[steps]]
id = "ask"
task = "log"
with = { message = "Approval needed for order {{ order }}" }

[[steps]]
id = "wait-for-answer"
kind = "checkpoint"
correlation_id = "scale-{{ order }}"
ttl = "30d"

[[steps]]
id = "done"
kind = "return"
value = { order = "{{ order }}", approved = "{{ results['wait-for-answer'].payload.approved }}" }
"""
#: the template's order: a token found nowhere else in its rows, replaced in each copy
TOKEN = "TMPLxORDER"
TTL = timedelta(days=30)
BATCH = 20_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def procctl(home: Path, *args: str, timeout: float = 600,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROCCTL_HOME": str(home), "NO_COLOR": "1"}
    proc = subprocess.run([PROCCTL, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise RuntimeError(f"procctl {' '.join(args)} -> {proc.returncode}\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return proc


# -- the build ------------------------------------------------------------------------


@dataclass
class Template:
    """One real paused instance's rows, as the agent wrote them."""

    instance: dict[str, Any]
    checkpoint: dict[str, Any]
    events: list[dict[str, Any]]


@dataclass
class Layout:
    """A bench directory: the big home, an empty home, the definition, what was built."""

    root: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def empty(self) -> Path:
        return self.root / "empty"

    @property
    def definition(self) -> Path:
        return self.root / "scale.toml"

    @property
    def meta_file(self) -> Path:
        return self.root / "bench.json"

    def save(self) -> None:
        self.meta_file.write_text(json.dumps(self.meta, indent=1))

    @classmethod
    def load(cls, root: Path) -> Layout:
        layout = cls(root)
        layout.meta = json.loads(layout.meta_file.read_text())
        return layout


def make_template(layout: Layout) -> Template:
    """Run one instance to its pause with a real agent; read (and remove) its rows."""
    layout.definition.write_text(DEFINITION)
    procctl(layout.home, "agent", "start")
    summary = json.loads(procctl(layout.home, "run", str(layout.definition), "-p",
                                 f"order={TOKEN}", "--wait", "--json").stdout)
    procctl(layout.home, "agent", "stop")
    assert summary["status"] == "paused", summary
    db = sqlite3.connect(layout.home / "procctl.db", isolation_level=None)
    db.row_factory = sqlite3.Row
    try:
        instance_id = summary["instance_id"]
        template = Template(
            dict(db.execute("SELECT * FROM instances WHERE id = ?", (instance_id,)).fetchone()),
            dict(db.execute("SELECT * FROM checkpoints WHERE instance_id = ?",
                            (instance_id,)).fetchone()),
            [dict(r) for r in db.execute("SELECT * FROM events WHERE instance_id = ? "
                                         "ORDER BY id", (instance_id,))])
        db.execute("BEGIN")
        for table, column in (("events", "instance_id"), ("checkpoints", "instance_id"),
                              ("instances", "id")):
            db.execute(f"DELETE FROM {table} WHERE {column} = ?", (instance_id,))
        db.execute("COMMIT")
    finally:
        db.close()
    return template


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


class Copier:
    """Makes copies of the template: copy k has order f"{k:07d}". Every time of the
    template is kept as its offset from the pause, so a copy only adds its own pause."""

    def __init__(self, template: Template, now: datetime) -> None:
        self.t = template
        self.now = now
        paused = datetime.fromisoformat(template.instance["paused_at"])
        self.ids: set[str] = set()

        def offset(text: str) -> timedelta:
            return datetime.fromisoformat(text) - paused

        self.instance_columns = list(template.instance)
        self.checkpoint_columns = list(template.checkpoint)
        self.event_columns = ["instance_id", "at", "kind", "step_id", "step_path",
                              "data_json"]
        self.instance_times = {key: offset(template.instance[key])
                               for key in ("started_at", "updated_at", "paused_at")}
        self.checkpoint_created = offset(template.checkpoint["created_at"])
        self.snapshot = json.loads(template.checkpoint["snapshot_json"])
        self.snapshot_created = offset(self.snapshot["created_at"])
        self.events = [({**event, "data_json": event["data_json"].replace(
            template.checkpoint["expires_at"], "\0EXPIRES\0")}, offset(event["at"]))
            for event in template.events]

    def new_id(self) -> str:
        while True:
            candidate = os.urandom(6).hex()
            if candidate not in self.ids:
                self.ids.add(candidate)
                return candidate

    def rows(self, k: int, expired: bool) -> tuple[tuple[Any, ...], tuple[Any, ...],
                                                   list[tuple[Any, ...]]]:
        order = f"{k:07d}"
        correlation_id = f"scale-{order}"
        instance_id = self.new_id()
        # Live copies paused over the last 29 days (their TTL runs 1 to 30 days more);
        # expired ones 31 to 40 days ago.
        back = timedelta(seconds=(k * 7919) % (9 * 86400 if expired else 29 * 86400))
        paused_at = self.now - back - (timedelta(days=31) if expired else timedelta(0))
        times = {key: _iso(paused_at + delta) for key, delta in self.instance_times.items()}
        expires_at = _iso(paused_at + TTL)
        instance = {**self.t.instance, **times, "id": instance_id,
                    "params_json": self.t.instance["params_json"].replace(TOKEN, order),
                    "correlation_id": correlation_id}
        snapshot = {**self.snapshot, "instance_id": instance_id,
                    "correlation_id": correlation_id,
                    "variables": {**self.snapshot["variables"], "order": order},
                    "original_start_utc": times["started_at"],
                    "created_at": _iso(paused_at + self.snapshot_created)}
        snapshot_json = json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False)
        checkpoint = {**self.t.checkpoint, "instance_id": instance_id,
                      "correlation_id": correlation_id, "snapshot_json": snapshot_json,
                      "size": len(snapshot_json.encode()), "expires_at": expires_at,
                      "created_at": _iso(paused_at + self.checkpoint_created)}
        events = [(instance_id, _iso(paused_at + delta), event["kind"], event["step_id"],
                   event["step_path"], event["data_json"].replace(TOKEN, order).replace(
                       "\0EXPIRES\0", expires_at))
                  for event, delta in self.events]
        return (tuple(instance[c] for c in self.instance_columns),
                tuple(checkpoint[c] for c in self.checkpoint_columns), events)


def add_copies(layout: Layout, template: Template, first: int, live: int,
               expired: int) -> None:
    """Insert `live` + `expired` copies, keys from `first` on, BATCH per transaction."""
    copier = Copier(template, datetime.now(UTC))
    db = sqlite3.connect(layout.home / "procctl.db", isolation_level=None)
    try:
        copier.ids.update(str(r[0]) for r in db.execute("SELECT id FROM instances"))
        # A build, not the agent's durability: no fsync while it is written (the file
        # is synced at the end), a big page cache for the random index inserts.
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -1048576")
        sql = {name: f"INSERT INTO {name} ({', '.join(cols)}) VALUES "
                     f"({', '.join('?' for _ in cols)})"
               for name, cols in (("instances", copier.instance_columns),
                                  ("checkpoints", copier.checkpoint_columns),
                                  ("events", copier.event_columns))}
        total, started = live + expired, time.monotonic()
        for start in range(0, total, BATCH):
            instances, checkpoints, events = [], [], []
            for n in range(start, min(start + BATCH, total)):
                instance, checkpoint, history = copier.rows(first + n, n >= live)
                instances.append(instance)
                checkpoints.append(checkpoint)
                events.extend(history)
            db.execute("BEGIN")
            db.executemany(sql["instances"], instances)
            db.executemany(sql["checkpoints"], checkpoints)
            db.executemany(sql["events"], events)
            db.execute("COMMIT")
            done = min(start + BATCH, total)
            rate = done / max(time.monotonic() - started, 1e-9)
            log(f"  {done:,} of {total:,} copies ({rate:,.0f}/s)")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    os.sync()


def build(layout: Layout, instances: int, expired: int) -> None:
    log(f"building {instances:,} paused instances ({expired:,} expired) in {layout.home}")
    started = time.monotonic()
    template = make_template(layout)
    layout.meta = {"instances": instances, "expired": expired, "next_key": 1,
                   "template": {"instance": template.instance,
                                "checkpoint": template.checkpoint,
                                "events": template.events}}
    add_copies(layout, template, 1, instances - expired, expired)
    layout.meta["next_key"] = 1 + instances
    layout.meta["built_seconds"] = round(time.monotonic() - started, 1)
    layout.save()
    size = (layout.home / "procctl.db").stat().st_size
    log(f"built in {layout.meta['built_seconds']} s: {size / 1e9:.2f} GB")
    check_one_resumes(layout)


def top_up(layout: Layout) -> None:
    """A kept build used before: add copies until N are paused, the expired share
    among them (a purge and the probes used some up)."""
    park_expired(layout.home, park=False)  # left parked by an interrupted run
    db = sqlite3.connect(layout.home / "procctl.db")
    now = _iso(datetime.now(UTC))
    try:
        paused = db.execute("SELECT COUNT(*) FROM instances WHERE status = 'paused'"
                            ).fetchone()[0]
        expired = db.execute("SELECT COUNT(*) FROM checkpoints c JOIN instances i ON i.id ="
                             " c.instance_id WHERE c.expires_at < ? AND i.status = 'paused'",
                             (now,)).fetchone()[0]
    finally:
        db.close()
    want_expired = max(layout.meta["expired"] - expired, 0)
    want_live = max(layout.meta["instances"] - paused - want_expired, 0)
    if want_live + want_expired == 0:
        return
    log(f"topping up: {want_live:,} live and {want_expired:,} expired copies")
    t = layout.meta["template"]
    template = Template(t["instance"], t["checkpoint"], t["events"])
    add_copies(layout, template, layout.meta["next_key"], want_live, want_expired)
    layout.meta["next_key"] += want_live + want_expired
    layout.save()


def check_one_resumes(layout: Layout) -> None:
    """A built copy is a real instance: `procctl resume` runs it to completion."""
    procctl(layout.home, "agent", "start")
    try:
        out = json.loads(procctl(layout.home, "resume", "--correlation-id", "scale-0000001",
                                 "--data", "approved=true", "--json").stdout)
    finally:
        procctl(layout.home, "agent", "stop")
    instance = out.get("instance") or {}
    assert instance.get("status") == "completed", out
    assert instance.get("result") == {"order": "0000001", "approved": True}, out
    log(f"copy scale-0000001 resumed to completion: {instance['result']}")


# -- measuring --------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: live instances the bench resumes (by the in-process path, the CLI, the probe)
PROBES = 200


class RunningAgent:
    """An agent of a home, started with `procctl agent start`, watched through /proc."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.paths = HomePaths.resolve(home)
        self.client = AgentClient(self.paths)
        self.pid = 0

    def start(self) -> float:
        """Seconds from `procctl agent start` to `agent status` saying ready."""
        started = time.perf_counter()
        procctl(self.home, "agent", "start")
        while True:
            status = self.client.status()
            if status is not None and status.get("state") == "ready":
                break
            time.sleep(0.005)
        self.pid = int(status["pid"])
        return time.perf_counter() - started

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def wait_checked(self, timeout: float = 900) -> float | None:
        """The store's check in the background (a store over the start-up budget):
        wait until it has finished; its seconds (None: there was none)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [json.loads(line) for line in
                     self.paths.log.read_text().splitlines() if line.startswith("{")]
            mine = [e for e in lines if e.get("pid") == self.pid]
            since = lines.index(mine[0]) if mine else 0  # this agent's lines on
            recent = [e["msg"] for e in lines[since:]]
            if not any("in the background" in m for m in recent):
                return None
            done = [e for e in lines[since:] if e["msg"] in (
                "the store checked whole: no damage",
                "the background check of the store could not finish")]
            if done:
                return float(done[-1].get("seconds", 0.0))
            time.sleep(0.5)
        raise RuntimeError("the store's check in the background did not end")

    def stop(self) -> None:
        procctl(self.home, "agent", "stop")


def timed(home: Path, *args: str) -> float:
    started = time.perf_counter()
    procctl(home, *args)
    return time.perf_counter() - started


def median_of(times: list[float]) -> float:
    return statistics.median(times)


def nearest_rank(times: list[float], share: float) -> float:
    """The `share` percentile, nearest rank (with fewer than 100 samples at 0.99: the
    largest)."""
    if not times:
        return 0.0
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, max(0, int(share * len(ordered) + 0.999) - 1))]


def live_correlation_ids(home: Path, count: int, keys: int) -> list[str]:
    """Correlation IDs of paused copies far from their TTL, from a random place among
    the first `keys` keys."""
    db = sqlite3.connect(f"file:{home / 'procctl.db'}?mode=ro", uri=True)
    soon = _iso(datetime.now(UTC) + timedelta(days=2))
    try:
        start = f"scale-{int.from_bytes(os.urandom(3)) % max(keys - 2 * count, 1):07d}"
        rows = db.execute(
            "SELECT c.correlation_id FROM checkpoints c JOIN instances i ON i.id ="
            " c.instance_id WHERE c.correlation_id >= ? AND i.status = 'paused'"
            " AND c.expires_at > ? ORDER BY c.correlation_id LIMIT ?",
            (start, soon, count)).fetchall()
    finally:
        db.close()
    return [str(r[0]) for r in rows]


def resume_by_signal(agent: RunningAgent, correlation_id: str, *, checks: bool) -> float:
    """What `procctl resume -c ID --data approved=true` does, in this process: (with
    `checks`) its checks read from the store, the signal file, then the agent followed
    until the instance completed. Seconds."""
    from procctl.agent.atomic import write_bytes_atomically
    from procctl.agent.signals import encode_document
    from procctl.cli.commands.resume_checks import refusal
    from procctl.store.clock import utc_now

    started = time.perf_counter()
    if checks:
        refused = refusal(agent.paths, correlation_id)
        assert refused is None, refused
    signal_id = os.urandom(16).hex()
    path = agent.paths.signals_dir() / f"resume-{signal_id}.json"
    written_at = utc_now()
    write_bytes_atomically(path, encode_document({
        "correlation_id": correlation_id, "payload": {"approved": True},
        "signal_id": signal_id, "sender": "bench/scale.py"}))
    outcome: dict[str, Any] = {}
    for kind, payload in agent.client.stream("await_signal", signal_id=signal_id,
                                             follow=True, file=path.name, since=written_at,
                                             wait_seconds=60, timeout=None):
        if kind == "result":
            outcome = payload
    assert (outcome.get("instance") or {}).get("status") == "completed", outcome
    return time.perf_counter() - started


def list_in_process(home: Path) -> tuple[float, float]:
    """What `procctl list-paused` reads, in this process: (open, the first page with
    its count), seconds each, the median of 5."""
    from procctl.cli.commands.paused import COUNT_CAP, TABLE_ROWS
    from procctl.store import open_store

    opens, reads = [], []
    for _ in range(5):
        started = time.perf_counter()
        store = open_store(home / "procctl.db", read_only=True)
        opened = time.perf_counter()
        rows = store.list_paused(limit=TABLE_ROWS + 1)
        store.count_paused_upto(COUNT_CAP + 1)
        reads.append(time.perf_counter() - opened)
        opens.append(opened - started)
        store.close()
        assert len(rows) == TABLE_ROWS + 1
    return median_of(opens), median_of(reads)


def list_all_json(home: Path) -> tuple[float, int, float]:
    """`procctl list-paused --json` of every row: seconds, rows, the command's peak RSS
    (MB: its VmHWM, sampled until it ends; wait4's ru_maxrss would count the pages of
    this process that the child shared before its exec)."""
    started = time.perf_counter()
    proc = subprocess.Popen([PROCCTL, "list-paused", "--json"], stdout=subprocess.PIPE,
                            env={**os.environ, "PROCCTL_HOME": str(home)},
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    peak = 0.0

    def sample() -> None:
        nonlocal peak
        while proc.poll() is None:
            try:
                text = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rows = sum(1 for line in proc.stdout if line.startswith(b"  {"))
    assert proc.wait() == 0
    sampler.join()
    return time.perf_counter() - started, rows, peak


def park_expired(home: Path, *, park: bool) -> int:
    """Move the TTL of the expired share a year ahead (so the agent's clock leaves it
    alone while idle is measured), or back (so that a purge finds it). Through the
    store's file, as any other writer; returns how many."""
    db = sqlite3.connect(home / "procctl.db", timeout=60, isolation_level=None)
    now = datetime.now(UTC)
    year = timedelta(days=365)
    try:
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute(
            "SELECT c.instance_id, c.expires_at FROM instances i JOIN checkpoints c ON"
            " c.instance_id = i.id WHERE i.status = 'paused' AND i.paused_at < ?"
            f" AND c.expires_at {'<' if park else '>'} ?",
            (_iso(now - TTL), _iso(now))).fetchall()
        moved = [(_iso(datetime.fromisoformat(at) + (year if park else -year)), iid)
                 for iid, at in rows]
        db.executemany("UPDATE checkpoints SET expires_at = ? WHERE instance_id = ?", moved)
        db.execute("COMMIT")
    finally:
        db.close()
    return len(moved)


@dataclass
class Probe:
    """While a purge runs: a resume by signal file and a status request, over and
    over, each timed (the store thread and the event loop kept answering?)."""

    agent: RunningAgent
    ids: list[str]
    resumes: list[float] = field(default_factory=list)
    pings: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        ids = iter(self.ids)
        while not self.stop.is_set():
            started = time.perf_counter()
            assert self.agent.client.status() is not None
            self.pings.append(time.perf_counter() - started)
            correlation_id = next(ids, None)
            if correlation_id is not None:
                self.resumes.append(resume_by_signal(self.agent, correlation_id, checks=False))
            time.sleep(0.05)


def purge(agent: RunningAgent, probe_ids: list[str]) -> dict[str, Any]:
    """`procctl purge-expired` with the agent running and the probe going."""
    probe = Probe(agent, probe_ids)
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    time.sleep(0.3)
    started = time.perf_counter()
    proc = subprocess.Popen([PROCCTL, "purge-expired"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PROCCTL_HOME": str(agent.home),
                                 "NO_COLOR": "1"})
    assert proc.stdout is not None
    last, gaps, progress, lines = started, [], 0, []
    for line in proc.stdout:
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
        progress += line.startswith("... ")
        lines.append(line.rstrip())
    code = proc.wait()
    seconds = time.perf_counter() - started
    probe.stop.set()
    thread.join()
    assert code == 0, "\n".join(lines[-5:])
    total = next((int(line.split()[1].replace(",", "")) for line in reversed(lines)
                  if line.startswith("Expired") and "in all" in line),
                 sum(1 for line in lines if line.startswith("Expired ")))
    return {"seconds": seconds, "expired_by_purge": total,
            "progress_lines": progress, "max_line_gap": max(gaps, default=0.0),
            "probe_resumes": len(probe.resumes),
            "probe_resume_max": max(probe.resumes, default=0.0),
            "probe_resume_median": median_of(probe.resumes) if probe.resumes else 0.0,
            "probe_resume_p99": nearest_rank(probe.resumes, 0.99),
            "probe_resumes_all": [round(t, 4) for t in probe.resumes],
            "probe_pings": len(probe.pings), "probe_ping_max": max(probe.pings, default=0.0)}


def paused_count(home: Path) -> tuple[int, int]:
    """(paused, of which past their TTL) in a home's store."""
    db = sqlite3.connect(f"file:{home / 'procctl.db'}?mode=ro", uri=True)
    try:
        paused = db.execute("SELECT COUNT(*) FROM instances WHERE status = 'paused'"
                            ).fetchone()[0]
        expired = db.execute(
            "SELECT COUNT(*) FROM checkpoints c JOIN instances i ON i.id = c.instance_id"
            " WHERE i.status = 'paused' AND c.expires_at < ?",
            (_iso(datetime.now(UTC)),)).fetchone()[0]
    finally:
        db.close()
    return int(paused), int(expired)


def measure(layout: Layout, *, idle_seconds: float) -> dict[str, Any]:
    """Every figure. The empty home's agent runs beside the big one's, and the CLI's
    timings alternate between the two homes, so that both see the same load."""
    f: dict[str, Any] = {"load_before": os.getloadavg(), "idle_seconds": idle_seconds}
    f["paused"], f["expired"] = paused_count(layout.home)
    f["store_gb"] = (layout.home / "procctl.db").stat().st_size / 1e9
    shutil.rmtree(layout.empty, ignore_errors=True)
    ids = live_correlation_ids(layout.home, PROBES + CLI_RUNS + 4, f["paused"] - f["expired"])
    assert len(ids) == PROBES + CLI_RUNS + 4, "too few live instances to resume"
    log(f"parked {park_expired(layout.home, park=True):,} expired (the clock leaves them)")
    empty, agent = RunningAgent(layout.empty), RunningAgent(layout.home)
    try:
        log("empty home: start-up (twice), three paused instances")
        starts = [empty.start()]
        empty.stop()
        starts.append(empty.start())
        f["empty_start"] = median_of(starts)
        for n in range(CLI_RUNS):
            procctl(layout.empty, "run", str(layout.definition), "-p", f"order=E{n}", "--wait")
        measure_running(layout, empty, agent, ids, f)
    finally:
        for running in (empty, agent):
            if running.pid:
                running.stop()
    f["load_after"] = os.getloadavg()
    return f


#: runs of each CLI command timed on each home (the median is kept)
CLI_RUNS = 5


def measure_running(layout: Layout, empty: RunningAgent, agent: RunningAgent,
                    ids: list[str], f: dict[str, Any]) -> None:
    idle_seconds = f["idle_seconds"]
    log(f"{f['paused']:,} paused: start-up")
    f["start"] = agent.start()
    log("waiting for the store's check in the background to end")
    f["background_check"] = agent.wait_checked()
    # One instance run, as the empty home's agent ran its three: both have loaded the
    # engine when their memory is compared.
    resume_by_signal(agent, ids.pop(), checks=False)
    time.sleep(2)
    log(f"idle CPU over {idle_seconds:.0f} s")
    cpu, at = agent.cpu_seconds(), time.monotonic()
    time.sleep(idle_seconds)
    f["idle_cpu"] = (agent.cpu_seconds() - cpu) / (time.monotonic() - at) * 100
    f["rss"], f["empty_rss"] = agent.rss_mb(), empty.rss_mb()
    log("list-paused and resume, in this process and through the CLI (both homes in turn)")
    f["inproc_list_open"], f["inproc_list_read"] = list_in_process(layout.home)
    f["inproc_resume"] = median_of([resume_by_signal(agent, ids.pop(), checks=True)
                                    for _ in range(3)])
    lists: dict[str, list[float]] = {"empty": [], "big": []}
    resumes: dict[str, list[float]] = {"empty": [], "big": []}
    for n in range(CLI_RUNS):
        lists["empty"].append(timed(layout.empty, "list-paused"))
        lists["big"].append(timed(layout.home, "list-paused"))
        resumes["empty"].append(timed(layout.empty, "resume", "-c", f"scale-E{n}", "--data",
                                      "approved=true"))
        resumes["big"].append(timed(layout.home, "resume", "-c", ids.pop(), "--data",
                                    "approved=true"))
    f["empty_cli_list"], f["cli_list"] = median_of(lists["empty"]), median_of(lists["big"])
    f["empty_cli_resume"] = median_of(resumes["empty"])
    f["cli_resume"] = median_of(resumes["big"])
    empty.stop()
    empty.pid = 0
    log("list-paused --json of every row")
    f["json_seconds"], f["json_rows"], f["json_peak_mb"] = list_all_json(layout.home)
    log(f"unparked {park_expired(layout.home, park=False):,} expired: purge-expired")
    f["purge"] = purge(agent, ids)
    f["after_purge"] = paused_count(layout.home)


def print_figures(f: dict[str, Any]) -> None:
    ms = 1000
    p = f["purge"]
    rows = [
        (f"agent idle CPU over {f['idle_seconds']:.0f} s", f"{f['idle_cpu']:.2f} % of a core",
         "<= 1 %", f["idle_cpu"] <= 1),
        ("agent RSS over an empty agent", f"{f['rss'] - f['empty_rss']:+.1f} MB "
         f"({f['rss']:.1f} vs {f['empty_rss']:.1f})", "<= +10 MB", f["rss"] - f["empty_rss"] <= 10),
        ("agent start-up (agent start -> ready)", f"{f['start']:.2f} s (empty home "
         f"{f['empty_start']:.2f} s)", "<= 1 s", f["start"] <= 1),
        ("list-paused first page, in-process", f"{f['inproc_list_read'] * ms:.1f} ms + open "
         f"{f['inproc_list_open'] * ms:.0f} ms", "<= 100 ms",
         f["inproc_list_read"] + f["inproc_list_open"] <= 0.1),
        ("resume --correlation-id, in-process", f"{f['inproc_resume'] * ms:.0f} ms",
         "<= 100 ms", f["inproc_resume"] <= 0.1),
        ("procctl list-paused (CLI)", f"{f['cli_list']:.2f} s = "
         f"{f['cli_list'] / f['empty_cli_list']:.2f}x empty ({f['empty_cli_list']:.2f} s)",
         "<= 1.5x", f["cli_list"] <= 1.5 * f["empty_cli_list"]),
        ("procctl resume --correlation-id (CLI)", f"{f['cli_resume']:.2f} s = "
         f"{f['cli_resume'] / f['empty_cli_resume']:.2f}x empty ({f['empty_cli_resume']:.2f} s)",
         "<= 1.5x", f["cli_resume"] <= 1.5 * f["empty_cli_resume"]),
        ("procctl list-paused --json, all rows", f"{f['json_rows']:,} rows in "
         f"{f['json_seconds']:.1f} s, peak RSS {f['json_peak_mb']:.0f} MB", "<= 200 MB",
         f["json_peak_mb"] <= 200 and f["json_rows"] >= f["paused"] - PROBES - 10),
        (f"purge of {f['expired']:,} expired, agent running", f"{p['seconds']:.1f} s "
         f"({p['expired_by_purge']:,} by the purge, the rest by the clock)", "<= 20 s",
         p["seconds"] <= 20),
        ("  agent while purging: probe resume max", f"{p['probe_resume_max'] * ms:.0f} ms "
         f"(median {p['probe_resume_median'] * ms:.0f} ms, p99 "
         f"{p['probe_resume_p99'] * ms:.0f} ms, {p['probe_resumes']} resumes); "
         f"status max {p['probe_ping_max'] * ms:.0f} ms", "<= 250 ms",
         max(p["probe_resume_max"], p["probe_ping_max"]) <= 0.25),
        ("  purge-expired output", f"{p['progress_lines']} progress lines, longest wait "
         f"{p['max_line_gap']:.2f} s", "progress, no timeout", p["progress_lines"] > 0),
    ]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"\n{f['paused']:,} paused instances ({f['expired']:,} past their TTL), store "
          f"{f['store_gb']:.2f} GB; load {f['load_before'][0]:.2f} before, "
          f"{f['load_after'][0]:.2f} after\n")
    print(f"{'figure':<{width}}  {'measured':<{value_width}}  target")
    print(f"{'-' * width}  {'-' * value_width}  {'-' * 22}")
    for name, value, target, met in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target} {'met' if met else 'NOT MET'}")
    if f["background_check"] is not None:
        print(f"\nThe store's integrity check went on in the background for "
              f"{f['background_check']:.1f} s after start (before the idle window).")
    print(f"After the purge: {f['after_purge'][0]:,} paused, {f['after_purge'][1]:,} past "
          "their TTL.")


# -- main -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, help="paused instances (default 1,000,000;"
                        " 100,000 with --quick)")
    parser.add_argument("--expired", type=int, help="how many of them are past their TTL"
                        " (default a tenth)")
    parser.add_argument("--quick", action="store_true",
                        help="100,000 instances and a 15 s idle window")
    parser.add_argument("--idle-seconds", type=float, help="the idle CPU window (60 s)")
    parser.add_argument("--dir", type=Path, help="where to make the bench directory")
    parser.add_argument("--keep", action="store_true", help="keep the bench directory")
    parser.add_argument("--reuse", type=Path, help="a kept bench directory to measure again")
    parser.add_argument("--build-only", action="store_true", help="build, keep, and stop")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    instances = args.instances or (100_000 if args.quick else 1_000_000)
    expired = instances // 10 if args.expired is None else args.expired
    if args.reuse:
        layout = Layout.load(args.reuse)
        top_up(layout)
    else:
        root = Path(tempfile.mkdtemp(prefix="procctl-scale-", dir=args.dir))
        layout = Layout(root)
        build(layout, instances, expired)
        top_up(layout)  # the check's agent ran its clock: it expired a few
    keep = args.keep or args.reuse is not None or args.build_only
    try:
        if args.build_only:
            print(layout.root)
            return
        figures = measure(layout, idle_seconds=args.idle_seconds or (15 if args.quick else 60))
        print_figures(figures)
        if args.json:
            print(json.dumps(figures, indent=1))
    finally:
        if not keep:
            shutil.rmtree(layout.root, ignore_errors=True)
        else:
            log(f"kept: {layout.root} (measure again with --reuse {layout.root})")


if __name__ == "__main__":
    main()
