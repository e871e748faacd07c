"""Clean-up: finished instances past the retention, old signal records (procctl purge
--finished, the retention setting, clearing old signal records).

Shared by both backends (store/sqlite.py, store/postgres.py), in the SQL both run.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from procctl.store.dbapi import Db


class RetentionContract(Protocol):
    """The part of the store contract (store/protocol.py) that this module keeps."""


class RetentionOps:
    _db: Db
    _write: Callable[[], AbstractContextManager[Db]]
    agent_id: str | None
