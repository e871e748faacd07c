"""procctl's persistence: a SQLite store of definitions, instances and events.

The store keeps opaque JSON payloads plus a few indexed columns; it knows nothing of
definitions, steps or the engine (standard library only). `StoreContract`
(store/protocol.py) is what the agent and the CLI rely on; `open_store` opens a home's
store as one (today always the SQLite class, `Store`).
"""

from pathlib import Path

from procctl.store.errors import StoreError
from procctl.store.protocol import StoreContract
from procctl.store.records import DefinitionRecord, EventRecord, InstanceRecord, Status
from procctl.store.sqlite import CHECK_BUDGET, Store


def open_store(path: Path, *, must_exist: bool = False, read_only: bool = False,
               check_budget: float | None = CHECK_BUDGET,
               check_rest_in_background: bool = False) -> StoreContract:
    """Open the store at `path` (see `Store` for the options). Typed as the contract,
    so mypy checks that the SQLite class satisfies it and that callers use no more."""
    return Store(path, must_exist=must_exist, read_only=read_only, check_budget=check_budget,
                 check_rest_in_background=check_rest_in_background)


__all__ = ["DefinitionRecord", "EventRecord", "InstanceRecord", "Status", "Store",
           "StoreContract", "StoreError", "open_store"]
