"""Agents sharing a store: their leases, the instances each owns, and takeovers.

Each agent has a row in `agents` with a lease (`lease_until`, seconds since 1970 by the
store's clock, never a host's) that it renews while it lives. Each running instance has
an `owner` (the ID of the agent running it) and an `epoch`, one more at each takeover.

A running instance whose owner's lease ran out (or that stopped, or that has no owner)
is an orphan: any live agent of its pool claims it, in a conditional UPDATE (on
PostgreSQL with `FOR UPDATE SKIP LOCKED`, so two claimers never take the same one), and
runs it on from its checkpoint as a restart does. An agent that lost its lease is
fenced: the backend refuses its writes (store/postgres.py checks the lease in every
write transaction). On SQLite one agent holds the home's lock, so the lease only shows
in `procctl agents`, and at start the agent takes every running instance.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from procctl.store.clock import utc_now
from procctl.store.dbapi import Db
from procctl.store.records import AgentRecord

#: stopped agents and agents whose lease ran out this long ago (seconds) are removed
#: from `agents` when an agent registers (what they owned was taken over long since)
FORGET_AFTER = 7 * 24 * 3600.0


def stamp(seconds: float) -> str:
    """Seconds since 1970 as the store's ISO UTC timestamp."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


class AgentOps:
    _db: Db
    _write: Callable[[], AbstractContextManager[Db]]
    #: SQL for the store's clock, in seconds since 1970 (each backend sets its own)
    NOW_SECONDS = "((julianday('now') - 2440587.5) * 86400.0)"
    #: SQL after the claim's inner SELECT (PostgreSQL: FOR UPDATE SKIP LOCKED)
    CLAIM_LOCK = ""
    #: several agents can share this store (PostgreSQL); else the home's lock keeps one
    shared = False
    #: this connection's agent and its incarnation (None: a command of the CLI)
    agent_id: str | None = None
    incarnation: str | None = None

    def register_agent(self, agent_id: str, *, host: str, pool: str, home: str, pid: int,
                       version: str, lease_seconds: float) -> str:
        """Join the store as a new incarnation of `agent_id`, with a lease of
        `lease_seconds`; returns the incarnation. From now on this connection's writes
        are this agent's (and refused once its lease is lost)."""
        incarnation = uuid.uuid4().hex
        now = self.NOW_SECONDS
        with self._write() as db:
            db.execute(f"DELETE FROM agents WHERE id <> ? AND lease_until < {now} - ?",
                       (agent_id, FORGET_AFTER))
            db.execute(
                "INSERT INTO agents (id, incarnation, host, pool, home, pid, version,"
                f" started_at, lease_until, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, {now} + ?,"
                " NULL) ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation,"
                " host = excluded.host, pool = excluded.pool, home = excluded.home,"
                " pid = excluded.pid, version = excluded.version,"
                " started_at = excluded.started_at, lease_until = excluded.lease_until,"
                " stopped_at = NULL",
                (agent_id, incarnation, host, pool, home, pid, version, utc_now(),
                 lease_seconds))
        self.agent_id, self.incarnation = agent_id, incarnation
        return incarnation

    def renew_lease(self, lease_seconds: float) -> str:
        """Extend this agent's lease to `lease_seconds` from now (the store's clock);
        returns the new end. Refused (the backend's Fenced) once the lease was lost."""
        now = self.NOW_SECONDS
        with self._write() as db:
            db.execute(f"UPDATE agents SET lease_until = {now} + ? WHERE id = ?"
                       " AND incarnation = ?", (lease_seconds, self.agent_id, self.incarnation))
            row = db.execute("SELECT lease_until FROM agents WHERE id = ?",
                             (self.agent_id,)).fetchone()
        return stamp(float(row[0]))

    def release_agent(self) -> None:
        """A clean stop: the lease ends now, so peers take over what still runs here."""
        if self.agent_id is None:
            return
        with self._write() as db:
            db.execute(f"UPDATE agents SET stopped_at = ?, lease_until = {self.NOW_SECONDS}"
                       " WHERE id = ? AND incarnation = ?",
                       (utc_now(), self.agent_id, self.incarnation))

    def claim_orphans(self, *, pool: str, limit: int = 500,
                      at_start: bool = False) -> list[str]:
        """Take over running instances whose owner is gone (lease out, stopped, or none),
        of this agent's pool or of none: owner = this agent, epoch + 1. `at_start`: also
        what this agent's last incarnation left running (and, on a store only one agent
        uses, every running instance). Returns their IDs, to be run on from their
        checkpoints."""
        def orphan(moment: str) -> str:
            """Running and taken by no live agent at `moment` (SQL): its owner's lease
            ended, it stopped, or it has none; at start, also this agent's own."""
            gone = (f"(i.owner IS NULL OR NOT EXISTS (SELECT 1 FROM agents a WHERE"
                    f" a.id = i.owner AND a.stopped_at IS NULL AND a.lease_until > {moment}))")
            if at_start:
                return "1 = 1" if not self.shared else f"(i.owner = ? OR {gone})"
            return gone

        own: tuple[Any, ...] = (self.agent_id,) if at_start and self.shared else ()
        if not at_start and self._db.execute(
                "SELECT 1 FROM instances i WHERE i.status = 'running' AND"
                f" {orphan(self.NOW_SECONDS)} AND (i.pool IS NULL OR i.pool = ?) LIMIT 1",
                (pool,)).fetchone() is None:
            return []  # the common case: no write transaction
        with self._write() as db:
            # One moment for the whole claim: no agent counts as gone unless its row was
            # locked below at that moment.
            moment = float(db.execute(f"SELECT {self.NOW_SECONDS}").fetchone()[0])
            if self.shared:
                # Write the rows of the agents whose instances are taken: a write of
                # theirs under way (its fence holds the row FOR SHARE: store/postgres.py)
                # commits first, and one that starts now waits for this transaction, then
                # reads the row again and finds its lease over.
                db.execute("UPDATE agents SET lease_until = lease_until WHERE id IN"
                           " (SELECT id FROM agents WHERE (stopped_at IS NOT NULL OR"
                           " lease_until <= ?) AND id IN (SELECT owner FROM instances"
                           " WHERE status = 'running') ORDER BY id FOR UPDATE)", (moment,))
            timed: tuple[Any, ...] = () if at_start and not self.shared else (moment,)
            # MATERIALIZED: the limited, locking choice runs once (PostgreSQL would
            # otherwise run it again for each row it joins, past the limit).
            rows = db.execute(
                "WITH picked AS MATERIALIZED (SELECT i.id FROM instances i WHERE"
                f" i.status = 'running' AND {orphan('?')} AND (i.pool IS NULL OR i.pool = ?)"
                f" ORDER BY i.updated_at LIMIT ? {self.CLAIM_LOCK})"
                " UPDATE instances SET owner = ?, epoch = epoch + 1, updated_at = ?"
                " WHERE status = 'running' AND id IN (SELECT id FROM picked) RETURNING id",
                (*own, *timed, pool, limit, self.agent_id, utc_now())).fetchall()
        return sorted(str(row[0]) for row in rows)

    def hand_over(self, instance_id: str) -> bool:
        """Give up a running instance this agent owns (its definition belongs to another
        pool): it becomes an orphan, which an agent of its pool claims. False when this
        agent does not own it (running) any more."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE instances SET owner = NULL, updated_at = ? WHERE id = ?"
                " AND status = 'running' AND owner = ?", (utc_now(), instance_id,
                                                           self.agent_id))
            return int(cursor.rowcount) == 1

    def list_agents(self) -> list[AgentRecord]:
        """Every agent known to the store, the live ones first, with how many running
        instances each owns."""
        now = self.NOW_SECONDS
        rows = self._db.execute(
            "SELECT a.id, a.host, a.pool, a.home, a.pid, a.version, a.started_at,"
            f" a.lease_until, a.stopped_at, CASE WHEN a.stopped_at IS NULL AND a.lease_until"
            f" > {now} THEN 1 ELSE 0 END AS alive, (SELECT COUNT(*) FROM instances i"
            " WHERE i.owner = a.id AND i.status = 'running') AS owned FROM agents a"
            " ORDER BY alive DESC, a.started_at DESC").fetchall()
        return [AgentRecord(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]),
                            str(r[6]), stamp(float(r[7])), r[8], bool(r[9]), int(r[10]))
                for r in rows]

    def clock_offset(self, tries: int = 5) -> float:
        """Seconds to add to this host's clock to read the store's: of `tries` readings,
        the one with the shortest round trip (its middle taken as the moment the store
        read its clock)."""
        best: tuple[float, float] | None = None
        for _ in range(tries):
            before = time.time()
            store_now = float(self._db.execute(f"SELECT {self.NOW_SECONDS}").fetchone()[0])
            after = time.time()
            if best is None or after - before < best[0]:
                best = (after - before, store_now - (before + after) / 2)
        assert best is not None
        return best[1]
