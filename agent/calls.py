"""How a parent paused at a `call` is named: its correlation ID is `call:<child id>`.

Kept apart (standard library only) so that the engine, the agent and the CLI's
summaries share it without importing one another.
"""

from __future__ import annotations

CALL_PREFIX = "call:"


def call_correlation_id(child_id: str) -> str:
    """The correlation ID a parent waits under while its child is paused."""
    return CALL_PREFIX + child_id


def called_child(correlation_id: str | None) -> str | None:
    """The child a parent with this correlation ID waits for, if it waits for one."""
    if correlation_id and correlation_id.startswith(CALL_PREFIX):
        return correlation_id.removeprefix(CALL_PREFIX)
    return None
