"""The SQL of a group commit: many checkpoints and events in a few statements.

Python's sqlite3 lets go of the GIL for every statement it steps (and for every row of
`executemany`), and takes it back when SQLite returns: while the event loop runs
Python, each take-back waits for the loop to yield it (up to the switch interval,
5 ms). So a transaction is written in as few statements as the rows allow, whatever
their number: the events in multi-row INSERTs, the checkpoints in one multi-row
UPSERT, the instances' correlation IDs in one UPDATE, and their checks in two SELECTs.

A checkpoint is an UPSERT (`ON CONFLICT(instance_id) DO UPDATE`), not `INSERT OR
REPLACE`: the row keeps its rowid and only the index entries whose columns changed are
rewritten (a REPLACE deletes the row and inserts a new one, with every index entry).
Each column a REPLACE would have reset is set the same way (iteration 0, no commit
value, no resume payload), so the row is the same as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from procctl.store.dbapi import Db
from procctl.store.errors import Conflict
from procctl.store.records import CheckpointRecord, EventRow

#: rows per multi-row statement (6 columns an event: far below SQLite's oldest limit
#: of 999 variables for 13-column checkpoints too)
ROWS_PER_STATEMENT = 64

_EVENT_COLUMNS = "instance_id, at, kind, data_json, step_id, step_path"
_CHECKPOINT_COLUMNS = ("instance_id, step_id, correlation_id, snapshot_json, size, iteration,"
                       " created_at, expires_at, resume_at, on_expire_json, commit_value_json,"
                       " resume_payload_json, pausing, expects_json")
_UPSERT_SET = ", ".join(
    f"{name} = excluded.{name}" for name in _CHECKPOINT_COLUMNS.split(", ")[1:])


@dataclass(frozen=True, slots=True)
class CheckpointWrite:
    """One checkpoint of a group commit (the arguments of `Store.save_checkpoint`)."""

    instance_id: str
    step_id: str
    correlation_id: str
    snapshot_json: str
    expires_at: str | None
    resume_at: str | None = None
    on_expire_json: str | None = None
    pausing: bool = False
    #: the payload it declares (`expects`): a signal that does not fit is refused
    expects_json: str | None = None


def _chunks(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        yield rows[start:start + ROWS_PER_STATEMENT]


@lru_cache(maxsize=ROWS_PER_STATEMENT)
def _insert_events_sql(count: int) -> str:
    marks = ", ".join(["(?, ?, ?, ?, ?, ?)"] * count)
    return f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES {marks}"


@lru_cache(maxsize=ROWS_PER_STATEMENT)
def _upsert_checkpoints_sql(count: int) -> str:
    marks = ", ".join(["(?, ?, ?, ?, ?, 0, ?, ?, ?, ?, NULL, NULL, ?, ?)"] * count)
    return (f"INSERT INTO checkpoints ({_CHECKPOINT_COLUMNS}) VALUES {marks}"
            f" ON CONFLICT(instance_id) DO UPDATE SET {_UPSERT_SET}")


@lru_cache(maxsize=ROWS_PER_STATEMENT)
def _move_correlations_sql(count: int) -> str:
    cases = " ".join(["WHEN ? THEN ?"] * count)
    marks = ", ".join(["?"] * count)
    return (f"UPDATE instances SET correlation_id = CASE id {cases} END, updated_at = ?"
            f" WHERE id IN ({marks})")


@lru_cache(maxsize=ROWS_PER_STATEMENT)
def _in_marks(count: int) -> str:
    return ", ".join(["?"] * count)


def insert_events(db: Db, events: Sequence[EventRow]) -> None:
    """History rows, in their order (their ids increase in it), a few statements."""
    for chunk in _chunks(events):
        db.execute(_insert_events_sql(len(chunk)), [value for row in chunk for value in row])


def write_checkpoints(db: Db, batch: Sequence[CheckpointWrite],
                      now: str) -> list[CheckpointRecord | Conflict]:
    """Each checkpoint replaces its instance's previous one, as if written one after
    the other in the batch's order; one that cannot be written is a Conflict in its
    place and writes nothing (its correlation ID is held by another instance, or its
    instance is not running). Runs inside the caller's write transaction."""
    holders = _current_holders(db, batch)
    running = _running(db, batch)
    outcomes: list[CheckpointRecord | Conflict] = []
    accepted: list[tuple[CheckpointWrite, int]] = []  # with the snapshot's size in bytes
    for item in batch:
        other = holders.holder(item.correlation_id)
        if other is not None and other != item.instance_id:
            outcomes.append(Conflict(
                f"correlation ID {item.correlation_id!r} is already held by instance {other}",
                hint=f"give this checkpoint a unique correlation_id, or finish or cancel "
                     f"{other}"))
            continue
        if item.instance_id not in running:
            outcomes.append(Conflict(f"instance {item.instance_id} is not running"))
            continue
        holders.move(item.instance_id, item.correlation_id)
        size = len(item.snapshot_json.encode())
        accepted.append((item, size))
        outcomes.append(CheckpointRecord(
            item.instance_id, item.step_id, item.correlation_id, item.snapshot_json, size, 0,
            now, item.expires_at, item.resume_at, item.on_expire_json, None,
            pausing=int(item.pausing), expects_json=item.expects_json))
    # An instance named twice (not done by the agent, which waits for each commit) keeps
    # the correlation ID of its last checkpoint, as one write after the other would.
    moves = list({item.instance_id: item.correlation_id for item, _ in accepted}.items())
    for chunk in _chunks(moves):
        db.execute(_move_correlations_sql(len(chunk)), [
            *(value for move in chunk for value in move), now,
            *(instance_id for instance_id, _ in chunk)])
    for chunk in _chunks(accepted):
        db.execute(_upsert_checkpoints_sql(len(chunk)), [
            value for item, size in chunk for value in (
                item.instance_id, item.step_id, item.correlation_id, item.snapshot_json,
                size, now, item.expires_at, item.resume_at, item.on_expire_json,
                int(item.pausing), item.expects_json)])
    return outcomes


class _Holders:
    """Which instance holds each correlation ID the batch names, as the batch goes."""

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self.by_correlation = dict(rows)
        self.by_instance = {instance: correlation for correlation, instance in rows}

    def holder(self, correlation_id: str) -> str | None:
        return self.by_correlation.get(correlation_id)

    def move(self, instance_id: str, correlation_id: str) -> None:
        previous = self.by_instance.pop(instance_id, None)
        if previous is not None:
            self.by_correlation.pop(previous, None)
        self.by_correlation[correlation_id] = instance_id
        self.by_instance[instance_id] = correlation_id


def _current_holders(db: Db, batch: Sequence[CheckpointWrite]) -> _Holders:
    """The stored checkpoints that hold the batch's correlation IDs."""
    rows: list[tuple[str, str]] = []
    for chunk in _chunks(batch):
        rows.extend((str(c), str(i)) for c, i in db.execute(
            "SELECT correlation_id, instance_id FROM checkpoints WHERE correlation_id IN"
            f" ({_in_marks(len(chunk))})", [item.correlation_id for item in chunk]))
    return _Holders(rows)


def _running(db: Db, batch: Sequence[CheckpointWrite]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(batch):
        found.update(str(row[0]) for row in db.execute(
            f"SELECT id FROM instances WHERE id IN ({_in_marks(len(chunk))})"
            " AND status = 'running'", [item.instance_id for item in chunk]))
    return found
