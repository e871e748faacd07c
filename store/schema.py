"""DDL and ordered migrations. `PRAGMA user_version` holds the schema version.

Each migration moves the schema from version N-1 to N and runs inside the same
transaction as the version bump, so a half-applied migration is never committed.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: definitions, instances, events
    """
    CREATE TABLE definitions (
        sha256      TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        version     TEXT,
        path        TEXT,
        source      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE instances (
        id                 TEXT PRIMARY KEY,
        definition_sha256  TEXT NOT NULL REFERENCES definitions(sha256),
        process_name       TEXT NOT NULL,
        process_version    TEXT,
        status             TEXT NOT NULL,
        params_json        TEXT NOT NULL,
        trigger_json       TEXT NOT NULL,
        started_at         TEXT NOT NULL,
        updated_at         TEXT NOT NULL,
        ended_at           TEXT,
        result_json        TEXT,
        error_json         TEXT
    );
    CREATE INDEX instances_by_status ON instances(status, started_at);
    CREATE INDEX instances_by_process ON instances(process_name, started_at);
    CREATE TABLE events (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id  TEXT NOT NULL REFERENCES instances(id),
        at           TEXT NOT NULL,
        kind         TEXT NOT NULL,
        step_id      TEXT,
        step_path    TEXT,
        data_json    TEXT NOT NULL
    );
    CREATE INDEX events_by_instance ON events(instance_id, id);
    """,
    # 2: checkpoints (one live snapshot per instance) and signals
    """
    ALTER TABLE instances ADD COLUMN paused_at TEXT;
    ALTER TABLE instances ADD COLUMN correlation_id TEXT;
    CREATE INDEX instances_by_correlation ON instances(correlation_id);
    CREATE INDEX instances_paused ON instances(paused_at) WHERE status = 'paused';
    CREATE TABLE checkpoints (
        instance_id        TEXT PRIMARY KEY REFERENCES instances(id),
        step_id            TEXT NOT NULL,
        correlation_id     TEXT NOT NULL UNIQUE,
        snapshot_json      TEXT NOT NULL,
        size               INTEGER NOT NULL,
        iteration          INTEGER NOT NULL DEFAULT 0,
        created_at         TEXT NOT NULL,
        expires_at         TEXT,
        resume_at          TEXT,
        on_expire_json     TEXT,
        commit_value_json  TEXT
    );
    CREATE INDEX checkpoints_by_resume ON checkpoints(resume_at) WHERE resume_at IS NOT NULL;
    CREATE INDEX checkpoints_by_expiry ON checkpoints(expires_at);
    CREATE TABLE signals (
        id              TEXT PRIMARY KEY,
        signal_id       TEXT,
        correlation_id  TEXT,
        payload_json    TEXT,
        set_json        TEXT,
        source          TEXT NOT NULL,
        status          TEXT NOT NULL,
        reason          TEXT,
        instance_id     TEXT,
        received_at     TEXT NOT NULL,
        hold_until      TEXT,
        resolved_at     TEXT
    );
    CREATE INDEX signals_by_status ON signals(status, correlation_id, received_at);
    CREATE INDEX signals_by_signal_id ON signals(signal_id);
    """,
    # 3: the payload of the resume an instance runs on from, so that a recovery repeats
    # that run with the same payload
    """
    ALTER TABLE checkpoints ADD COLUMN resume_payload_json TEXT;
    """,
    # 4: definitions that `call` others (the called texts are pinned with them), and
    # child instances, found again by their parent and the call's position
    """
    ALTER TABLE definitions ADD COLUMN children_json TEXT;
    ALTER TABLE instances ADD COLUMN parent_id TEXT;
    ALTER TABLE instances ADD COLUMN call_key TEXT;
    CREATE UNIQUE INDEX instances_by_call ON instances(parent_id, call_key)
        WHERE parent_id IS NOT NULL;
    """,
    # 5: a checkpoint that pauses and has not paused yet (its commit block may be running):
    # a recovery pauses there again, and a signal for it is held until it has
    """
    ALTER TABLE checkpoints ADD COLUMN pausing INTEGER NOT NULL DEFAULT 0;
    """,
    # 6: indexes that read only what is asked for at a million paused instances
    # (docs/scale.md): expiries in (expires_at, instance_id) order, so that a purge
    # pages through them; paused instances newest first, all or one process's, in
    # (paused_at, id) order, so that list-paused pages by key. CREATE INDEX only
    # (no table is rebuilt): about a second per index per million rows.
    """
    DROP INDEX IF EXISTS checkpoints_by_expiry;
    CREATE INDEX checkpoints_expiring ON checkpoints(expires_at, instance_id)
        WHERE expires_at IS NOT NULL;
    DROP INDEX IF EXISTS instances_paused;
    CREATE INDEX instances_paused_by_time ON instances(paused_at, id) WHERE status = 'paused';
    CREATE INDEX instances_paused_by_process ON instances(process_name, paused_at, id)
        WHERE status = 'paused';
    """,
    # 7: several agents on one store (docs/multi-host.md): each running instance has an
    # owner (an agent's ID), an epoch (how many times it was taken over) and, when its
    # definition must stay on some hosts, a pool (only that pool's agents take it); each
    # agent has a lease, renewed while it lives (lease_until: seconds since 1970 by the
    # store's clock). `incarnation` tells one run of an agent from the next, so that a
    # frozen agent's late writes are refused once it has lost its lease.
    """
    ALTER TABLE instances ADD COLUMN owner TEXT;
    ALTER TABLE instances ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE instances ADD COLUMN pool TEXT;
    CREATE INDEX instances_running_by_owner ON instances(owner) WHERE status = 'running';
    CREATE TABLE agents (
        id           TEXT PRIMARY KEY,
        incarnation  TEXT NOT NULL,
        host         TEXT NOT NULL,
        pool         TEXT NOT NULL,
        home         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        version      TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        lease_until  REAL NOT NULL,
        stopped_at   TEXT
    );
    """,
    # 8: the payload a checkpoint declares (`expects`, as agent/definition/payload_fields.py
    # writes it), read in a signal's delivery: one that does not fit is refused there
    """
    ALTER TABLE checkpoints ADD COLUMN expects_json TEXT;
    """,
    # 9: indexes for the operator's commands: a finished instance's signal rows found by
    # their instance (purge --finished, retention, cancel), and instances by start time
    # (list's pages read only the index, newest first)
    """
    CREATE INDEX signals_by_instance ON signals(instance_id) WHERE instance_id IS NOT NULL;
    CREATE INDEX instances_by_start ON instances(started_at, id);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
