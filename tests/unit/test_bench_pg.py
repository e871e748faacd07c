"""bench/checkpoints.py --store-url: the work split among agents, the comparisons with
SQLite and with the server's raw limit, and the raw loops on a real server, run small."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pg_server import PgServer

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """The bench's modules, imported as `python bench/checkpoints.py` imports them."""
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name)
               for name in ("pg_figures", "pg_limits", "pg_workloads", "raw_limits")}
    finally:
        sys.path.remove(str(BENCH))


def test_split_work_gives_every_instance_to_one_agent(
        bench: dict[str, ModuleType]) -> None:
    split = bench["pg_figures"].split_work
    assert split(50, 3) == [17, 17, 16]
    assert split(50, 1) == [50]
    assert split(3, 3) == [1, 1, 1]
    assert split(7, 2) == [4, 3]
    for bad in ((2, 3), (5, 0)):
        with pytest.raises(ValueError, match="cannot split"):
            split(*bad)


def _rate(label: str, rate: float) -> dict[str, Any]:
    return {"label": label, "checkpoints_per_s": rate}


def _loop(when: str, commits: float, rows: float, agents: int | None = None) -> dict[str, Any]:
    loop = {"when": when, "commits_per_s": commits, "rows_per_s": rows}
    return loop if agents is None else {**loop, "agents": agents}


def test_comparisons_put_each_figure_beside_sqlite_and_its_own_raw_limit(
        bench: dict[str, ModuleType]) -> None:
    sqlite = {"one_instance_1kb": _rate("1 instance, ~1 KB", 1000),
              "one_instance_100kb": _rate("1 instance, ~100 KB", 500),
              "many_instances_1kb": _rate("50 instances, ~1 KB", 4000),
              "many_instances_100kb": _rate("50 instances, ~100 KB", 800)}
    pg = {
        "raw": {"single_1kb": [_loop("between", 2000, 2000)],
                "single_100kb": [_loop("between", 400, 400)],
                "batch_100x1kb": [_loop("before", 90, 9000, 1), _loop("after", 100, 10000, 1),
                                  _loop("before", 50, 5000, 3), _loop("after", 40, 4000, 3)]},
        "one_agent": {"one_instance_1kb": _rate("1 instance, ~1 KB", 500),
                      "one_instance_100kb": _rate("1 instance, ~100 KB", 200),
                      "many_instances_1kb": _rate("50 instances, ~1 KB", 2000),
                      "many_instances_100kb": _rate("50 instances, ~100 KB", 400)},
        "three_agents": {"agents": 3,
                         "many_instances_1kb": _rate("50 instances, ~1 KB", 3000),
                         "many_instances_100kb": _rate("50 instances, ~100 KB", 600)},
    }
    rows = {(r["key"], r["agents"]): r for r in bench["pg_figures"].comparisons(sqlite, pg)}
    assert len(rows) == 6
    one = rows["one_instance_1kb", 1]
    assert (one["vs_sqlite"], one["raw"], one["vs_raw"]) == (0.5, 2000, 0.25)
    assert one["vs_one_agent"] is None
    assert rows["one_instance_100kb", 1]["vs_raw"] == 0.5
    # the batches: the better measurement beside the same number of agents
    assert rows["many_instances_1kb", 1]["raw"] == 10000
    assert rows["many_instances_1kb", 3]["raw"] == 5000
    three = rows["many_instances_1kb", 3]
    assert (three["vs_sqlite"], three["vs_raw"], three["vs_one_agent"]) == (0.75, 0.6, 1.5)
    large = rows["many_instances_100kb", 3]  # no raw loop of 100 KB batches
    assert (large["raw"], large["vs_raw"], large["vs_one_agent"]) == (None, None, 1.5)
    assert not any(r["sqlite_beside"] for r in rows.values())
    # SQLite measured beside PostgreSQL, when there is such a figure, wins over the run's
    pg["sqlite_beside"] = {"one_agent": {"one_instance_1kb": _rate("1 instance, ~1 KB", 250)},
                           "three_agents": {}}
    again = {(r["key"], r["agents"]): r for r in bench["pg_figures"].comparisons(sqlite, pg)}
    assert again["one_instance_1kb", 1]["vs_sqlite"] == 2.0
    assert again["one_instance_1kb", 1]["sqlite_beside"] is True
    assert again["many_instances_1kb", 3]["sqlite"] == 4000


@pytest.mark.postgres
def test_raw_loops_commit_on_the_server_in_a_database_of_their_own(
        bench: dict[str, ModuleType], pg_server: PgServer) -> None:
    import psycopg  # the pg_server fixture made sure it is there

    limits = bench["pg_limits"]
    pg_server.ensure_running()
    with limits.bench_database(pg_server.url()) as url:
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        assert name.startswith("procctl_bench_")
        facts = limits.server_facts(url)
        assert facts["fsync"] == "on" and facts["synchronous_commit"] == "on"
        store = limits.PgRawStore(url)
        try:
            single = store.commit_loop(row_bytes=3000, commits=5)
            batch = store.commit_loop(row_bytes=100, commits=2, rows_per_commit=7)
        finally:
            store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT key, length(body) FROM bench_raw_rows"
                                " ORDER BY key").fetchall()
            assert int(conn.execute("SELECT xact_commit FROM pg_stat_database"
                                    " WHERE datname = current_database()").fetchone()[0]) > 0
    assert (single.commits, len(single.times), batch.rows_per_commit) == (5, 5, 7)
    assert batch.rows_per_second == pytest.approx(14 / batch.seconds)
    # key 0 holds the last 100-character row; keys 1..6 the batch's others
    assert rows == [(0, 100)] + [(k, 100) for k in range(1, 7)]
    left = pg_server.admin("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
    assert left[0][0] == 0  # dropped at the end


@pytest.mark.postgres
def test_bench_database_names_the_server_in_one_line_when_it_cannot_create(
        bench: dict[str, ModuleType], pg_server: PgServer) -> None:
    limits = bench["pg_limits"]
    pg_server.ensure_running()
    pg_server.admin("DROP ROLE IF EXISTS bench_nocreate")
    pg_server.admin("CREATE ROLE bench_nocreate LOGIN")
    url = pg_server.url().replace("procctl@", "bench_nocreate@")
    with pytest.raises(limits.BenchSetupError) as failed, limits.bench_database(url):
        pass
    message = str(failed.value)
    assert "\n" not in message
    assert "permission denied to create database" in message
    assert "CREATEDB" in message and "--pg-throwaway" in message


@pytest.mark.postgres
def test_one_agent_then_three_share_the_work_on_one_server(
        bench: dict[str, ModuleType], pg_server: PgServer, tmp_path: Path) -> None:
    """The PostgreSQL part end to end, tiny: real agents (`procctl agent run`) in their
    own homes on one database; every figure read back from the store."""
    limits, raw = bench["pg_limits"], bench["raw_limits"]
    pg_server.ensure_running()
    notes: list[str] = []
    with limits.bench_database(pg_server.url()) as url:
        pg = bench["pg_workloads"].run_postgres(
            url, tmp_path, (raw.RawLoop(1024, 4), raw.RawLoop(4096, 4), raw.RawLoop(1024, 2, 5)),
            single=3, repeats=1, instances=4, each_small=2, each_large=2, warm_up=1,
            signals=2, note=notes.append, commit_runs=(2, 6))
    one, three = pg["one_agent"], pg["three_agents"]
    assert one["one_instance_1kb"]["checkpoints"] == 3
    assert one["many_instances_1kb"]["checkpoints"] == 4 * 2
    for key in ("many_instances_1kb", "many_instances_100kb"):
        assert three[key]["split"] == [2, 1, 1]
        assert three[key]["owners_match"] is True  # each ran where it was submitted
        assert three[key]["checkpoints"] == 4 * 2
    for where in ("one_agent", "across_agents"):
        assert pg["signal"][where]["next_step_started"]["samples"] == 2
    assert pg["commits_per_checkpoint"]["per_checkpoint"] == pytest.approx(1.0, abs=0.05)
    assert [r["agents"] for r in pg["raw"]["batch_100x1kb"]] == [1, 1, 3, 3]
    assert pg["server"]["fsync"] == "on"
    # SQLite's figures for the ratios, measured at the same moments by an agent of its own
    beside = pg["sqlite_beside"]
    assert beside["one_agent"]["one_instance_1kb"]["checkpoints"] == 3
    assert beside["one_agent"]["many_instances_100kb"]["checkpoints"] == 4 * 2
    assert set(beside["three_agents"]) == {"many_instances_1kb", "many_instances_100kb"}
    sqlite_part = {key: {"checkpoints_per_s": -1.0} for key in one}
    rows = bench["pg_figures"].comparisons(sqlite_part, pg)
    assert all(r["sqlite_beside"] and r["sqlite"] > 0 for r in rows)
    assert any("3 agents" in n for n in notes)
