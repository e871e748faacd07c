"""The agent's log: JSON lines in `<home>/agent.log`, and readable lines on stderr."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from procctl.agent.homefiles import open_private

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PrivateFileHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Appends to a file of the home, opened without following a link (and only when it
    is the user's own: see agent/homefiles.py), unlike logging.FileHandler."""

    def __init__(self, path: Path) -> None:
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        super().__init__(os.fdopen(fd, "a", encoding="utf-8"))

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self.flush()
            finally:
                self.stream.close()
        super().close()


def setup_logging(path: Path, level: str, *, to_stderr: bool) -> None:
    root = logging.getLogger("procctl")
    for old in root.handlers:
        old.close()
    root.handlers.clear()
    root.setLevel(level.upper())
    root.propagate = False
    file_handler = PrivateFileHandler(path)
    file_handler.setFormatter(JsonLinesFormatter())
    root.addHandler(file_handler)
    if to_stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(stream)
