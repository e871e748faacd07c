"""What the store's SQL runs on: a SQLite connection, or a PostgreSQL one made to look
like it (store/postgres.py `PgConnection`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
