"""The store's SQL, written for SQLite, as PostgreSQL runs it.

The store's modules write one SQL for both backends; the few places where the two
differ are rewritten here, once per statement text (cached): `?` placeholders become
`%s` (and a literal `%` becomes `%%`), `INSERT OR IGNORE` becomes `ON CONFLICT DO
NOTHING`, SQLite's join-order hint `CROSS JOIN ... ON` a plain `JOIN`, and the
`+column` that keeps SQLite off an index the column itself. Rows read as SQLite's do:
by position and by column name (`Row`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

_UNARY_PLUS = re.compile(r"(?<![\w)])\+(?=[a-z_])")


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's dialect of one statement -> PostgreSQL's."""
    text = sql.replace("%", "%%").replace("?", "%s")
    if text.lstrip().upper().startswith("INSERT OR IGNORE"):
        text = text.replace("INSERT OR IGNORE", "INSERT", 1) + " ON CONFLICT DO NOTHING"
    text = text.replace("CROSS JOIN", "JOIN")
    return _UNARY_PLUS.sub("", text)


class Row(tuple[Any, ...]):
    """A row read by position (`row[0]`) or by column name (`row["id"]`, `dict(row)`),
    as `sqlite3.Row` reads."""

    names: tuple[str, ...] = ()

    def __new__(cls, names: tuple[str, ...], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row.names = names
        return row

    def keys(self) -> tuple[str, ...]:
        return self.names

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self.names.index(key))
            except ValueError:
                raise IndexError(f"no column {key!r}") from None
        return tuple.__getitem__(self, key)


def row_factory(cursor: Any) -> Any:
    """psycopg's row factory for `Row`."""
    description = cursor.description
    names = tuple(column.name for column in description) if description else ()

    def make(values: Sequence[Any]) -> Row:
        return Row(names, values)

    return make
