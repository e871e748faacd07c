"""Listings of instances by time and by key (procctl list --since/--until/--after).

Shared by both backends (store/sqlite.py, store/postgres.py), in the SQL both run.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from procctl.store.dbapi import Db


class ListingContract(Protocol):
    """The part of the store contract (store/protocol.py) that this module keeps."""


class ListingOps:
    _db: Db
    _write: Callable[[], AbstractContextManager[Db]]
    agent_id: str | None
