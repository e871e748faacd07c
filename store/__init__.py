"""procctl's persistence: a SQLite store of definitions, instances and events.

The store keeps opaque JSON payloads plus a few indexed columns; it knows nothing of
definitions, steps or the engine (standard library only). `StoreContract`
(store/protocol.py) is what the agent and the CLI use; `open_store` opens a home's
store as one (today always the SQLite class, `Store`).

The names below are imported on first use (PEP 562 `__getattr__`): `from procctl.store
import InstanceRecord` costs the records module alone, and the SQLite class with
everything it uses comes in with `open_store` or `Store` (procctl's start-up,
bench/cli_startup.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procctl.store.errors import StoreError
    from procctl.store.protocol import StoreContract
    from procctl.store.records import DefinitionRecord, EventRecord, InstanceRecord, Status
    from procctl.store.sqlite import Store

#: each name this package exports, and the module that defines it
_WHERE = {
    "DefinitionRecord": "procctl.store.records",
    "EventRecord": "procctl.store.records",
    "InstanceRecord": "procctl.store.records",
    "Status": "procctl.store.records",
    "Store": "procctl.store.sqlite",
    "StoreContract": "procctl.store.protocol",
    "StoreError": "procctl.store.errors",
}


def __getattr__(name: str) -> Any:
    """Import an exported name from its module when it is first asked for."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def open_store(path: Path, *, url: str | None = None, must_exist: bool = False,
               read_only: bool = False, check_budget: float | EllipsisType | None = ...,
               check_rest_in_background: bool = False) -> StoreContract:
    """Open the store at `path`, or the PostgreSQL store at `url` when one is given
    (see `Store` and `PgStore` for the options; `check_budget` left out is the SQLite
    store's CHECK_BUDGET; the file checks do not apply to a server). Typed as the
    contract, so mypy checks that both classes satisfy it and that callers use no more."""
    if url:
        from procctl.store.postgres import PgStore

        return PgStore(url, path, read_only=read_only)
    from procctl.store.sqlite import CHECK_BUDGET, Store

    return Store(path, must_exist=must_exist, read_only=read_only,
                 check_budget=CHECK_BUDGET if isinstance(check_budget, EllipsisType)
                 else check_budget,
                 check_rest_in_background=check_rest_in_background)


__all__ = ["DefinitionRecord", "EventRecord", "InstanceRecord", "Status", "Store",
           "StoreContract", "StoreError", "open_store"]
