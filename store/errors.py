"""Errors raised by the store."""


class StoreError(Exception):
    """A store problem, with a message naming the file or object and an optional hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class NotFound(StoreError):
    """The requested row does not exist."""


class AmbiguousId(NotFound):
    """An instance ID prefix that matches several instances, or is too short to name one
    safely; `candidates` are (id, process, status) of the newest matches."""

    def __init__(self, message: str, hint: str | None = None,
                 candidates: tuple[tuple[str, str, str], ...] = ()) -> None:
        super().__init__(message, hint)
        self.candidates = candidates


class Conflict(StoreError):
    """A conditional transition found the row in another state."""
