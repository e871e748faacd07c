"""The PostgreSQL figures' arithmetic (no I/O): the work split among agents, and each
figure beside SQLite's from the same run and beside the server's raw limit."""

from __future__ import annotations

from typing import Any


def split_work(total: int, parts: int) -> list[int]:
    """`total` instances among `parts` agents, as evenly as can be, the larger shares
    first: 50 among 3 is [17, 17, 16]."""
    if parts < 1 or total < parts:
        raise ValueError(f"cannot split {total} instances among {parts} agents")
    share, rest = divmod(total, parts)
    return [share + (1 if i < rest else 0) for i in range(parts)]


def ratio(figure: float, limit: float | None) -> float | None:
    """figure / limit; None without a limit (or with a limit of 0)."""
    return figure / limit if limit else None


def best_limit(loops: list[dict[str, Any]], field: str | None,
               agents: int) -> float | None:
    """The higher of a raw loop's measurements: of those taken beside `agents` agents
    when the loop says beside how many (the 100-row batches), else of all."""
    if field is None:
        return None
    chosen = [r for r in loops if r.get("agents", agents) == agents]
    return max((r[field] for r in chosen), default=None)


#: (key in the figures, the raw loop that limits it, and what that loop gives)
_ROWS = (("one_instance_1kb", "single_1kb", "commits_per_s", "raw 1 KB commits/s"),
         ("one_instance_100kb", "single_100kb", "commits_per_s", "raw 100 KB commits/s"),
         ("many_instances_1kb", "batch_100x1kb", "rows_per_s", "raw 100-row batch rows/s"),
         ("many_instances_100kb", None, None, None))


def comparisons(sqlite: dict[str, Any], postgresql: dict[str, Any]) -> list[dict[str, Any]]:
    """Each PostgreSQL checkpoints/s figure (one agent, then three) beside the same
    workload's SQLite figure (one agent): the one measured beside it
    (`postgresql["sqlite_beside"]`, pg_workloads.SqliteBeside) when there is one, else
    `sqlite`, the run's SQLite part; beside the server's raw limit
    (the best of its measurements, as for SQLite's targets), and for three agents beside
    one agent on the same server."""
    raw = postgresql["raw"]
    rows = []
    for agents_key, agents in (("one_agent", 1), ("three_agents", 3)):
        for key, raw_key, raw_field, raw_name in _ROWS:
            mine = postgresql[agents_key].get(key)
            if mine is None:
                continue
            rate = mine["checkpoints_per_s"]
            measured_beside = postgresql.get("sqlite_beside", {}).get(agents_key, {}).get(key)
            theirs = (measured_beside or sqlite[key])["checkpoints_per_s"]
            limit = best_limit(raw.get(raw_key or "", []), raw_field, agents)
            one = postgresql["one_agent"].get(key) if agents > 1 else None
            rows.append({
                "figure": mine["label"], "key": key, "agents": agents,
                "postgresql": rate, "sqlite": theirs, "vs_sqlite": ratio(rate, theirs),
                "sqlite_beside": measured_beside is not None,
                "raw": limit, "raw_name": raw_name, "vs_raw": ratio(rate, limit),
                "vs_one_agent": ratio(rate, one["checkpoints_per_s"]) if one else None,
            })
    return rows
