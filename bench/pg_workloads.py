"""The checkpoint workloads of (a) on a PostgreSQL store: one agent, then three agents at
once on the same server, each in its own home, the concurrent instances split among
them; the server's raw commit loops measured at the same moments, as for SQLite.

Every agent is a real `procctl agent run` with PROCCTL_STORE_URL set to the bench's own
database (pg_limits.bench_database); figures are read from the instances' history in
that database, exactly as for SQLite (agent_workloads.throughput_figures).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from agent_workloads import LARGE_PAD, SMALL_PAD, Bench, throughput_figures, throughput_json
from figures import spread
from pg_figures import split_work
from pg_limits import PgRawStore, server_facts
from raw_limits import RawLoop, Slices, beside, measure

AGENTS = 3
#: checkpoints each further agent runs before the three-agent workloads (not measured)
WARM_UP_EACH = 100


def owners(bench: Bench, ids: list[str]) -> dict[str, int]:
    """How many of the instances each agent owns (the store's `owner` column)."""
    counts: dict[str, int] = {}
    with bench.store() as store:
        for instance_id in ids:
            owner = store.get_instance(instance_id).owner or "?"
            counts[owner] = counts.get(owner, 0) + 1
    return counts


def throughput_across(benches: list[Bench], label: str, instances: int, per_instance: int,
                      pad: int) -> dict[str, Any]:
    """`instances` instances at once, split among the agents (each submitted to its own
    agent over its socket, all held by the gate until one moment); the figures of
    Bench.throughput, the span running from the first checkpoint on any agent to the
    last on any."""
    shares = split_work(instances, len(benches))
    go_at = time.time() + 1.0 + 0.03 * instances
    ids: list[str] = []
    submitted: list[tuple[str, int]] = []
    for bench, share in zip(benches, shares, strict=True):
        mine = [bench.submit("checkpoints", items=per_instance, pad=pad, go_at=go_at)
                for _ in range(share)]
        ids += mine
        submitted.append((bench.agent_id(), share))
    if time.time() > go_at:
        print(f"  note: submitting took past the gate in {label}", file=sys.stderr)
    benches[0].wait_status(ids, {"completed"}, timeout=600)
    row = throughput_figures(label, ids, [benches[0].history(i) for i in ids],
                             per_instance, [], concurrent=True)
    ran = owners(benches[0], ids)
    row["split"] = shares
    # each instance ran where it was submitted (no agent took over another's work)
    row["owners_match"] = all(ran.get(agent, 0) == share for agent, share in submitted)
    return row


class SqliteBeside:
    """SQLite's figures taken at the same moments as PostgreSQL's, for the ratios: an
    agent on a SQLite home of its own whose one-instance runs alternate with
    PostgreSQL's (in the `between` hook, after the raw slice), and whose concurrent
    workloads run right before PostgreSQL's."""

    def __init__(self, bench: Bench, single: int, repeats: int) -> None:
        self.bench = bench
        self.single = single
        self.repeats = repeats
        self.figures: dict[str, dict[str, Any]] = {"one_agent": {}, "three_agents": {}}

    def alternate(self, key: str, raw: Slices, pad: int) -> Callable[[], None]:
        """The `between` hook of a one-instance workload: a raw slice, then (before each
        PostgreSQL run, not after the last) one SQLite run of the same instance; the
        figures are complete after the last call."""
        ids: list[str] = []

        def between() -> None:
            raw.take()
            if len(ids) < self.repeats:
                summary = self.bench.submit_and_wait("checkpoints", items=self.single,
                                                     pad=pad)
                if summary.get("status") != "completed":
                    raise RuntimeError(f"SQLite's bench instance did not complete: {summary}")
                ids.append(summary["instance_id"])
                if len(ids) == self.repeats:
                    size = "~1 KB" if pad == SMALL_PAD else "~100 KB"
                    self.figures["one_agent"][key] = throughput_json(throughput_figures(
                        f"1 instance, {size}", ids, [self.bench.history(i) for i in ids],
                        self.single, [], concurrent=False))

        return between

    def concurrent(self, agents_key: str, key: str, instances: int, per_instance: int,
                   pad: int) -> None:
        size = "~1 KB" if pad == SMALL_PAD else "~100 KB"
        row = self.bench.throughput(f"{instances} instances, {size}", instances,
                                    per_instance, pad)
        self.figures[agents_key][key] = throughput_json(row)


def run_postgres(url: str, workdir: Path, raw_loops: tuple[RawLoop, RawLoop, RawLoop],
                 single: int, repeats: int, instances: int, each_small: int,
                 each_large: int, warm_up: int, signals: int,
                 note: Callable[[str], None],
                 commit_runs: tuple[int, int] = (50, 250)) -> dict[str, Any]:
    """The PostgreSQL figures (JSON-able): the server, its raw loops, one agent's four
    workloads of (a), its signal latency (b) and commits per checkpoint (c), the two
    concurrent workloads with three agents, and the signal latency across agents."""
    raw_small_loop, raw_large_loop, raw_batch_loop = raw_loops
    facts = server_facts(url)
    benches = [Bench(workdir, f"pg-home-{n + 1}", store_url=url) for n in range(AGENTS)]
    raw_store = PgRawStore(url)
    sqlite = SqliteBeside(Bench(workdir, "sqlite-beside"), single, repeats)
    try:
        with ExitStack() as agents:
            agents.enter_context(benches[0].agent())
            agents.enter_context(sqlite.bench.agent())
            note("PostgreSQL, 1 agent: warm-up (and SQLite's agent beside it)")
            benches[0].submit_and_wait("checkpoints", items=warm_up, pad=SMALL_PAD)
            sqlite.bench.submit_and_wait("checkpoints", items=warm_up, pad=SMALL_PAD)
            note("PostgreSQL, 1 agent: 1 instance, ~1 KB, alternating with SQLite's runs, "
                 "between slices of raw 1 KB commits")
            raw_small = Slices(raw_store, raw_small_loop, repeats + 1)
            one_small = benches[0].throughput(
                "1 instance, ~1 KB", 1, single, SMALL_PAD, repeats,
                between=sqlite.alternate("one_instance_1kb", raw_small, SMALL_PAD))
            note("PostgreSQL, 1 agent: 1 instance, ~100 KB, alternating with SQLite's runs, "
                 "between slices of raw 100 KB commits")
            raw_large = Slices(raw_store, raw_large_loop, repeats + 1)
            one_large = benches[0].throughput(
                "1 instance, ~100 KB", 1, single, LARGE_PAD, repeats,
                between=sqlite.alternate("one_instance_100kb", raw_large, LARGE_PAD))
            stored_100kb = raw_store.stored_bytes()
            note(f"PostgreSQL, 1 agent: {instances} instances, ~1 KB, after SQLite's, beside "
                 "raw 100-row batches")
            sqlite.concurrent("one_agent", "many_instances_1kb", instances, each_small,
                              SMALL_PAD)
            many_small, batch_one = beside(
                lambda: measure(raw_store, raw_batch_loop),
                lambda: benches[0].throughput(f"{instances} instances, ~1 KB", instances,
                                              each_small, SMALL_PAD))
            note(f"PostgreSQL, 1 agent: {instances} instances, ~100 KB, after SQLite's")
            sqlite.concurrent("one_agent", "many_instances_100kb", instances, each_large,
                              LARGE_PAD)
            many_large = benches[0].throughput(f"{instances} instances, ~100 KB",
                                               instances, each_large, LARGE_PAD)
            note(f"PostgreSQL, 1 agent: signal latency ({signals} signals)")
            signal_one = benches[0].signal_latency(signals)
            note("PostgreSQL, 1 agent: commits per checkpoint")
            durable = benches[0].commits_per_checkpoint(*commit_runs)
            note(f"PostgreSQL: {AGENTS - 1} more agents, warm-up")
            for bench in benches[1:]:
                agents.enter_context(bench.agent())
                bench.submit_and_wait("checkpoints", items=WARM_UP_EACH, pad=SMALL_PAD)
            note(f"PostgreSQL, {AGENTS} agents: {instances} instances, ~1 KB, after SQLite's, "
                 "beside raw 100-row batches")
            sqlite.concurrent("three_agents", "many_instances_1kb", instances, each_small,
                              SMALL_PAD)
            three_small, batch_three = beside(
                lambda: measure(raw_store, raw_batch_loop),
                lambda: throughput_across(benches, f"{instances} instances, ~1 KB",
                                          instances, each_small, SMALL_PAD))
            note(f"PostgreSQL, {AGENTS} agents: {instances} instances, ~100 KB, after "
                 "SQLite's")
            sqlite.concurrent("three_agents", "many_instances_100kb", instances, each_large,
                              LARGE_PAD)
            three_large = throughput_across(benches, f"{instances} instances, ~100 KB",
                                            instances, each_large, LARGE_PAD)
            note(f"PostgreSQL: signal latency, paused on agent 1, the file dropped on "
                 f"agent 2 ({signals} signals)")
            signal_across = benches[0].signal_latency(signals, via=benches[1],
                                                       tag="across")
    finally:
        raw_store.close()
    batches = [("before", 1, batch_one[0]), ("after", 1, batch_one[1]),
               ("before", AGENTS, batch_three[0]), ("after", AGENTS, batch_three[1])]
    return {
        "server": facts,
        "sqlite_beside": sqlite.figures,
        "raw": {"single_1kb": raw_small.result(), "single_100kb": raw_large.result(),
                "batch_100x1kb": [{"when": f"{when}, {n} agent{'s' if n > 1 else ''}",
                                   "agents": n, **r.to_json()} for when, n, r in batches],
                "row_100kb_stored_bytes": stored_100kb},
        "one_agent": {"one_instance_1kb": throughput_json(one_small),
                      "one_instance_100kb": throughput_json(one_large),
                      "many_instances_1kb": throughput_json(many_small),
                      "many_instances_100kb": throughput_json(many_large)},
        "signal": {"one_agent": signal_json(signal_one),
                   "across_agents": signal_json(signal_across)},
        "commits_per_checkpoint": durable,
        "three_agents": {
            "agents": AGENTS,
            "many_instances_1kb": {**throughput_json(three_small),
                                   "split": three_small["split"],
                                   "owners_match": three_small["owners_match"]},
            "many_instances_100kb": {**throughput_json(three_large),
                                     "split": three_large["split"],
                                     "owners_match": three_large["owners_match"]}},
    }


def signal_json(latency: dict[str, Any]) -> dict[str, Any]:
    """Bench.signal_latency's samples as spreads, as checkpoints.py gives SQLite's."""
    return {"signal_applied": spread(latency["applied"]),
            "instance_resumed": spread(latency["resumed"]),
            "next_step_started": spread(latency["samples"]),
            "offset_corrected": latency["offset_corrected"],
            "offset_changed": latency["offset_changed"]}
