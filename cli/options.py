"""Options every command shares, and how the read commands open the store. The app
imports this module at start-up: the store and rich come in when a command reads
(`read_store`).

The global options (--home, --debug, --version) are the app callback's, before the
command (`procctl --home X list`), and every command's too, after it (`procctl list
--home X`): `global_params` gives the parameters cli/lazy.py adds to each command as it
loads it. Given after the command, they change the root's GlobalOptions before the
command runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from procctl.agent import VERSION
from procctl.agent.paths import HomePaths

if TYPE_CHECKING:
    from typer._click import Parameter

    from procctl.store import StoreContract

T = TypeVar("T")
#: how many times a read starts again when an agent opened the store meanwhile
READ_ATTEMPTS = 3


HOME_HELP = "The agent's home directory (database, socket, log)."
HOME_DEFAULT = "PROCCTL_HOME or the user state directory"
DEBUG_HELP = "Show tracebacks on errors."
VERSION_HELP = "Print the version and exit."


@dataclass
class GlobalOptions:
    home: HomePaths
    debug: bool = False


#: --debug was given, before or after the command (read by cli/app.py's `report`,
#: after the command's context is gone)
_debug_given = False


def set_debug(value: bool) -> None:
    global _debug_given
    _debug_given = _debug_given or value


def debug_given() -> bool:
    return _debug_given


def print_version(value: bool) -> None:
    """--version's callback (eager): print the version and exit."""
    if value:
        typer.echo(f"procctl {VERSION}")
        raise typer.Exit()


def global_options(ctx: typer.Context) -> GlobalOptions:
    options = ctx.find_root().obj
    if not isinstance(options, GlobalOptions):  # a command called without the callback
        options = GlobalOptions(HomePaths.resolve(None))
    options.home.check_path()
    return options


def _root_options(ctx: typer.Context) -> GlobalOptions:
    """The root context's GlobalOptions, made when the app callback has not run."""
    root = ctx.find_root()
    if not isinstance(root.obj, GlobalOptions):
        root.obj = GlobalOptions(HomePaths.resolve(None))
    return root.obj


def _home_after(ctx: typer.Context, value: Path | None) -> None:
    if value is not None and not ctx.resilient_parsing:
        _root_options(ctx).home = HomePaths.resolve(value)


def _debug_after(ctx: typer.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        _root_options(ctx).debug = True
        set_debug(True)


def _after_the_command(
    home: Annotated[Path | None, typer.Option(
        "--home", help=f"The agent's home directory (default: {HOME_DEFAULT}).",
        callback=_home_after, expose_value=False)] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help=DEBUG_HELP, callback=_debug_after, expose_value=False)] = False,
    version: Annotated[bool, typer.Option(
        "--version", help=VERSION_HELP, callback=print_version, is_eager=True,
        expose_value=False, hidden=True)] = False,
) -> None:
    """The global options as a command's own (their values go to the root: see
    `global_params`)."""


@cache
def global_params() -> tuple[Parameter, ...]:
    """--home, --debug and --version as parameters of a command (built once; click
    keeps no state in a parameter). Not exposed to the command's function: their
    callbacks set the root's GlobalOptions (the app callback has run by then: click
    parses a command's arguments after its group's callback). `--home` takes no
    PROCCTL_HOME here: the root's already did, and one after the command overrides
    it. `--version` works after a command too, but is left out of its help."""
    import typer.main

    holder = typer.Typer(add_completion=False)
    holder.command()(_after_the_command)
    return tuple(typer.main.get_command(holder).params)


def home_store_url(home: HomePaths) -> str | None:
    """The PostgreSQL location of the home's store (PROCCTL_STORE_URL, else its
    store_url setting), or None: the SQLite file in the home."""
    from procctl.agent.store_location import store_url

    return store_url(home)


def has_store(home: HomePaths) -> bool:
    """Whether there is a store to read: a PostgreSQL one (the home needs no file of
    its own for that), or the home's SQLite file."""
    if home_store_url(home) is not None:
        return True
    return home.exists() and home.db.exists()


def open_home_store(home: HomePaths, *, read_only: bool = False,
                    must_exist: bool = False) -> StoreContract:
    """The home's store: the SQLite file, or the PostgreSQL server it names (StoreError
    with an install hint when the PostgreSQL driver is missing)."""
    from procctl.store import open_store

    url = home_store_url(home)
    if url is None:
        return open_store(home.db, read_only=read_only, must_exist=must_exist)
    from procctl.store.urls import require_driver

    require_driver(url)
    return open_store(home.db, url=url, read_only=read_only, must_exist=must_exist)


def nothing_text(what: str, home: HomePaths, filters: str = "") -> str:
    """An empty listing's line as plain text: in the home (or no home there), or in
    the PostgreSQL store the home uses."""
    from procctl.cli import render

    url = home_store_url(home)
    if url is None:
        return render.nothing_in_home_text(what, home.home, filters, exists=home.exists())
    from procctl.store.urls import redacted

    where = f" ({filters})" if filters else ""
    return render.neutralise(f"No {what} in the store {redacted(url)}{where}.")


def no_home_note(home: HomePaths) -> str | None:
    """The note a read command adds when it found no home (a mistyped --home?); None
    when there is one, or when the store is a server."""
    from procctl.cli import render

    if home.exists() or home_store_url(home) is not None:
        return None
    return render.no_home(home.home)


def read_store(home: HomePaths, read: Callable[[StoreContract], T]) -> T:
    """Open the home's store read-only (it must exist), run `read` on it, close it.

    Nothing is written to the store (see store/reading.py). When an agent opened the
    file while it was read without its WAL files, `read` runs again. A store of an
    older schema is read as it is, with one note that the next agent start migrates it.
    The store is the PostgreSQL one when the home names one (agent/store_location.py).
    """
    from procctl.cli import render
    from procctl.store import StoreError
    from procctl.store.schema import SCHEMA_VERSION

    noted = False
    for attempt in range(1, READ_ATTEMPTS + 1):
        store = open_home_store(home, read_only=True)
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

    return (f"The store at {store.location} has schema {store.file_schema}, this procctl "
            f"uses {SCHEMA_VERSION}; the next `procctl agent start` migrates it.")
