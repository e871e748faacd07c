"""procctl's persistence: a SQLite store of definitions, instances and events.

The store keeps opaque JSON payloads plus a few indexed columns; it knows nothing of
definitions, steps or the engine (standard library only).
"""

from procctl.store.errors import StoreError
from procctl.store.records import DefinitionRecord, EventRecord, InstanceRecord
from procctl.store.sqlite import Store

__all__ = ["DefinitionRecord", "EventRecord", "InstanceRecord", "Store", "StoreError"]
