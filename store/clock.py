"""Timestamps as the store keeps them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc_now() -> str:
    """Now, as an ISO-8601 UTC timestamp with microseconds (sorts correctly as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def utc_after(seconds: float) -> str:
    """The timestamp `seconds` from now, in the same form."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def to_stamp(moment: datetime) -> str:
    """Any aware datetime in the store's form (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
