"""Timestamps as the store keeps them.

On a store that several hosts share, every time the agents compare (leases, scheduled
resumes, expiries, held signals) is the database's: an agent on PostgreSQL measures how
far its host's clock is from the server's (`set_offset`, at start and at each lease
renewal), and every timestamp it takes is corrected by that much.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: seconds to add to this host's clock to read the store's (0: the host's own)
_offset = 0.0


def set_offset(seconds: float) -> None:
    """From now on, timestamps are this host's clock plus `seconds` (the store's)."""
    global _offset
    _offset = seconds


def utc_now() -> str:
    """Now, as an ISO-8601 UTC timestamp with microseconds (sorts correctly as text)."""
    if _offset:
        return (datetime.now(UTC) + timedelta(seconds=_offset)).isoformat(
            timespec="microseconds")
    return datetime.now(UTC).isoformat(timespec="microseconds")


def utc_after(seconds: float) -> str:
    """The timestamp `seconds` from now, in the same form."""
    return (datetime.now(UTC) + timedelta(seconds=seconds + _offset)).isoformat(
        timespec="microseconds")


def to_stamp(moment: datetime) -> str:
    """Any aware datetime in the store's form (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
