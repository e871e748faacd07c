"""The PostgreSQL part of bench/checkpoints.py's report (`--store-url`,
`--pg-throwaway`), printed after SQLite's from the same figures as --json."""

from __future__ import annotations

from typing import Any

from figures import size_text, table


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _share(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f} %" if value < 1 else f"{value:.2f}x"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def print_server(pg: dict[str, Any]) -> None:
    server, info = pg["server"], pg["run"]
    print(f"\nPostgreSQL ({info['seconds']:.1f} s, load {info['load_before']:.2f} before, "
          f"{info['load_after']:.2f} after)\n")
    print(f"  server   {server['server_version']}: fsync {server['fsync']}, "
          f"synchronous_commit {server['synchronous_commit']}, wal_sync_method "
          f"{server['wal_sync_method']}, shared_buffers {server['shared_buffers']}")
    print(f"  where    {server['where']}")
    print("  store    a database of the bench's own on that server (procctl_bench_...), "
          "dropped afterwards;\n           every agent has its own home and "
          "PROCCTL_STORE_URL naming that database")


def print_pg_limits(pg: dict[str, Any]) -> None:
    raw = pg["raw"]
    print("\nRaw limits on the server: psycopg 3, one connection, BEGIN ... COMMIT (a "
          "commit returns once\nthe server has flushed its WAL), each measured at the "
          "same moments as the figure it limits")
    print(f"  a 100 KB row of the loop's text takes {size_text(raw['row_100kb_stored_bytes'])}"
          " in the table (TOAST compresses text over 2 KB,\n  as it does the bench's "
          "~100 KB snapshots, which are mostly one repeated character)\n")
    rows = []
    names = (("single_1kb", "1 KB row per commit"), ("single_100kb", "100 KB row per commit"),
             ("batch_100x1kb", "100 x 1 KB rows per commit"))
    for key, name in names:
        for loop in raw[key]:
            rows.append([name, loop["when"], str(loop["commits"]),
                         f"{loop['commits_per_s']:,.0f}", f"{loop['rows_per_s']:,.0f}",
                         _ms(loop["commit_p50_ms"]), _ms(loop["commit_p99_ms"])])
    print(table(["loop", "when", "commits", "commits/s", "rows/s", "commit p50",
                 "commit p99"], rows))


def print_pg_throughput(pg: dict[str, Any]) -> None:
    three = pg["three_agents"]
    agents = three["agents"]
    rows = [(1, r) for r in pg["one_agent"].values()]
    rows += [(agents, three[k]) for k in ("many_instances_1kb", "many_instances_100kb")]
    print(f"\n(a) on PostgreSQL: checkpoints committed per second (one agent; then {agents} "
          "agents at once,\neach in its own home, the instances split among them)\n")
    print(table(
        ["workload", "agents", "how", "checkpoints", "snapshot", "span", "ckpt/s",
         "ckpt p50", "ckpt p99", "events/ckpt"],
        [[r["label"], str(n),
          ("1 run" if r["runs"] == 1 else f"{r['runs']} in turn")
          if r["instances"] == 1 else "at once",
          str(r["checkpoints"]), size_text(r["snapshot_bytes"]), f"{r['span_s']:.2f} s",
          f"{r['checkpoints_per_s']:.0f}", _ms(r["interval_p50_ms"]),
          _ms(r["interval_p99_ms"]), f"{r['events_per_checkpoint']:.1f}"]
         for n, r in rows]))
    for n, r in rows:
        if r["instances"] > 1:
            split = (f"; split {' + '.join(str(s) for s in r['split'])}, each instance ran "
                     f"on the agent it was submitted to: {'yes' if r['owners_match'] else 'NO'}"
                     if "split" in r else "")
            print(f"  {r['label']}, {n} agent{'s' if n > 1 else ''}: {r['overlap']} of "
                  f"{r['instances']} overlapped{split}")


def print_pg_signal(pg: dict[str, Any], sqlite: dict[str, Any]) -> None:
    one, across = pg["signal"]["one_agent"], pg["signal"]["across_agents"]
    count = int(one["next_step_started"]["samples"])
    print(f"\n(b) on PostgreSQL: signal file renamed -> next step started ({count} paused "
          "instances each,\none signal at a time), beside SQLite's (b) from this run\n")
    names = (("signal_applied", "rename -> signal_applied"),
             ("instance_resumed", "rename -> instance_resumed"),
             ("next_step_started", "rename -> next step_started"))
    print(table(
        ["stage", "PG 1 agent p50", "p99", "PG across p50", "p99", "SQLite p50", "p99"],
        [[name, _ms(one[k]["p50_ms"]), _ms(one[k]["p99_ms"]), _ms(across[k]["p50_ms"]),
          _ms(across[k]["p99_ms"]), _ms(sqlite["signal"][k]["p50_ms"]),
          _ms(sqlite["signal"][k]["p99_ms"])] for k, name in names]))
    print("  across: paused on agent 1, each file dropped into agent 2's signals directory "
          "(agent 2\n  applies the signal and runs the instance on)")
    if count < 100:
        print(f"  (with {count} samples the p99 is the largest sample)")
    if one["offset_corrected"] and across["offset_corrected"]:
        left_out = one["offset_changed"] + across["offset_changed"]
        print("  each agent's clock offset (its status) taken out of its event times"
              + (f"; {left_out} sample(s) left out, the offset changed during them"
                 if left_out else ""))
    else:
        print("  note: the agents stamp events with the store's clock as they estimate it "
              "(host clock plus an\n  offset measured over one round trip, again at each "
              "lease renewal) and do not report\n  that offset: on one host these "
              "latencies are off by it, up to half a round trip (several\n  ms under "
              "load; a negative figure is the estimate's error)")
    commits = pg["commits_per_checkpoint"]
    print(f"\n(c) on PostgreSQL, 1 agent: durable commits per checkpoint "
          f"{commits['per_checkpoint']:.2f} (a run of {commits['small']} checkpoints took "
          f"{commits['commits'][0]} commits, one of {commits['large']} took "
          f"{commits['commits'][1]})")


def print_comparisons(pg: dict[str, Any]) -> None:
    rows = pg["comparisons"]
    if all(r.get("sqlite_beside") for r in rows):
        sqlite_is = ("SQLite measured at the same moments (an agent on a\nSQLite home of "
                     "its own: its one-instance runs alternating with PostgreSQL's, its 50\n"
                     "instances right before PostgreSQL's)")
    else:
        sqlite_is = "SQLite (one agent, this run's SQLite part)"
    print(f"\nPostgreSQL beside {sqlite_is}, and beside the server's raw limit\n(the "
          "better of its measurements; for the 100-row batches, those taken beside the "
          "same\nnumber of agents)\n")
    print(table(
        ["figure (checkpoints/s)", "agents", "PostgreSQL", "SQLite", "PG / SQLite",
         "raw PG limit", "(limit is)", "PG / limit"],
        [[r["figure"], str(r["agents"]), _rate(r["postgresql"]), _rate(r["sqlite"]),
          _share(r["vs_sqlite"]), _rate(r["raw"]), r["raw_name"] or "-",
          _share(r["vs_raw"])] for r in rows]))
    for r in rows:
        if r["vs_one_agent"] is not None:
            print(f"  {r['figure']}: {r['agents']} agents reach {r['vs_one_agent']:.2f}x "
                  "one agent's rate on the same server")


def print_pg_busy(pg: dict[str, Any]) -> None:
    info = pg["run"]
    if info["busy"]:
        print(f"  note: the load average ({info['load_before']:.1f} before, "
              f"{info['load_after']:.1f} after) exceeded the cores during the PostgreSQL "
              "part:\n  the agents, the server and other work shared the CPU")


def print_postgres(pg: dict[str, Any], sqlite: dict[str, Any]) -> None:
    """The PostgreSQL part; `sqlite` is the run's SQLite figures (`procctl` of --json)."""
    print_server(pg)
    print_pg_limits(pg)
    print_pg_throughput(pg)
    print_pg_signal(pg, sqlite)
    print_comparisons(pg)
    print_pg_busy(pg)
