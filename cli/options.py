"""Options every command shares (set by the app callback), and how the read commands
open the store. The app imports this module at start-up: the store and rich come in
when a command reads (`read_store`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import typer

from procctl.agent.paths import HomePaths

if TYPE_CHECKING:
    from procctl.store import StoreContract

T = TypeVar("T")
#: how many times a read starts again when an agent opened the store meanwhile
READ_ATTEMPTS = 3


@dataclass
class GlobalOptions:
    home: HomePaths
    debug: bool = False


def global_options(ctx: typer.Context) -> GlobalOptions:
    options = ctx.find_root().obj
    if not isinstance(options, GlobalOptions):  # a command called without the callback
        options = GlobalOptions(HomePaths.resolve(None))
    options.home.check_path()
    return options


def read_store(home: HomePaths, read: Callable[[StoreContract], T]) -> T:
    """Open the home's store read-only (it must exist), run `read` on it, close it.

    Nothing is written to the store (see store/reading.py). When an agent opened the
    file while it was read without its WAL files, `read` runs again. A store of an
    older schema is read as it is, with one note that the next agent start migrates it.
    """
    from procctl.cli import render
    from procctl.store import StoreError, open_store
    from procctl.store.schema import SCHEMA_VERSION

    noted = False
    for attempt in range(1, READ_ATTEMPTS + 1):
        store = open_store(home.db, read_only=True)
        if not noted and store.file_schema < SCHEMA_VERSION:
            render.note(older_schema_note(store))
            noted = True
        try:
            result = read(store)
        except StoreError:
            if attempt < READ_ATTEMPTS and store.changed_since_open():
                continue
            raise
        finally:
            store.close()
        if attempt == READ_ATTEMPTS or not store.changed_since_open():
            return result
    raise AssertionError("unreachable")


def older_schema_note(store: StoreContract) -> str:
    from procctl.store.schema import SCHEMA_VERSION

    return (f"The store at {store.path} has schema {store.file_schema}, this procctl "
            f"uses {SCHEMA_VERSION}; the next `procctl agent start` migrates it.")
