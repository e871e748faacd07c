"""`GET /events?since=STAMP`: a server-sent event stream of instance changes.

Every half second the store is read (read-only, as `procctl list` reads it) for the
instances whose `updated_at` moved, and each is sent as an `instance` event whose data
is its summary (agent/summary.py, as `procctl show --json` starts). An event's `id` is
the latest `updated_at` sent, so a browser that reconnects (EventSource does so by
itself, with `Last-Event-ID`) goes on from there; `since` (a store timestamp) does the
same for a page that was drawn at that time. Without either, the stream starts now.

Writers stamp `updated_at` before they commit, so a row may become visible with a stamp
a little older than one already sent: each read looks `MARGIN` back and leaves out what
it sent already. An instance may so be sent twice; a page just draws it again.

A store that cannot be read (none yet, a server down) is said once in a `problem`
event, `{"message": ...}`, and the stream goes on reading.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from procctl.agent.errors import AgentError
from procctl.agent.paths import HomePaths
from procctl.agent.summary import instance_summary
from procctl.store.clock import to_stamp, utc_now
from procctl.store.errors import StoreError

if TYPE_CHECKING:
    from procctl.store import StoreContract

T = TypeVar("T")

POLL_SECONDS = 0.5
#: how far back each read looks for rows committed after a newer one was sent
MARGIN = timedelta(seconds=2)
#: rows per read, and reads per poll (a burst larger than this is sent over later polls)
PAGE = 200
PAGES_PER_POLL = 5
#: a comment line after this long without an event, so a closed tab is noticed
KEEPALIVE_SECONDS = 15.0
#: how long a browser waits before it reconnects (ms), sent at the start
RETRY_MS = 2000


def read_home(home: HomePaths, read: Callable[[StoreContract], T]) -> T:
    """Open the home's store read-only, run `read`, close it; once more when an agent
    opened the store meanwhile (see cli/options.py `read_store`, which also prints a
    note on an older schema: a server reading every half second should not)."""
    from procctl.cli.options import open_home_store

    for last in (False, True):
        store = open_home_store(home, read_only=True, must_exist=True)
        try:
            result = read(store)
        except StoreError:
            if not last and store.changed_since_open():
                continue
            raise
        finally:
            store.close()
        if last or not store.changed_since_open():
            return result
    raise AssertionError("unreachable")


def parse_stamp(text: str) -> str:
    """A `since` value as a store timestamp; ValueError for one that is not a time."""
    moment = datetime.fromisoformat(text.replace(" ", "+"))  # a `+` the URL did not encode
    return to_stamp(moment)


@dataclass
class Cursor:
    """Where a stream stands: the latest `updated_at` sent, and what was sent within
    MARGIN of it (instance ID -> its updated_at)."""

    high: str
    sent: dict[str, str] = field(default_factory=dict)

    def low(self) -> str:
        return to_stamp(datetime.fromisoformat(self.high) - MARGIN)

    def read(self, store: StoreContract) -> list[dict[str, Any]]:
        """The summaries of the instances that changed since the last read."""
        low = self.low()
        after = (low, "")
        summaries: list[dict[str, Any]] = []
        for _ in range(PAGES_PER_POLL):
            rows = store.instances_changed_after(after, PAGE)
            for record in rows:
                if self.sent.get(record.id) != record.updated_at:
                    summaries.append(instance_summary(record, store.find_checkpoint(record.id)))
                    self.sent[record.id] = record.updated_at
                    self.high = max(self.high, record.updated_at)
            if len(rows) < PAGE:
                break
            after = (rows[-1].updated_at, rows[-1].id)
        low = self.low()
        self.sent = {key: stamp for key, stamp in self.sent.items() if stamp >= low}
        return summaries


def sse(event: str | None, data: str | None = None, event_id: str | None = None) -> str:
    """One event in the text/event-stream format (`data` holds no line break: JSON)."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    if data is not None:
        lines.append(f"data: {data}")
    return "\n".join(lines) + "\n\n"


async def stream(home: HomePaths, cursor: Cursor, *, poll: float = POLL_SECONDS,
                 stopping: threading.Event | None = None) -> AsyncIterator[str]:
    """The events of `home` from `cursor` on, until the client goes away or
    `stopping` is set."""
    yield f"retry: {RETRY_MS}\n\n"
    problem: str | None = None
    quiet = 0.0
    while stopping is None or not stopping.is_set():
        try:
            summaries = await run_in_threadpool(read_home, home, cursor.read)
        except (StoreError, AgentError) as exc:
            if exc.message != problem:
                problem = exc.message
                yield sse("problem", json.dumps({"message": problem}))
                quiet = 0.0
        else:
            problem = None
            for summary in summaries:
                yield sse("instance", json.dumps(summary, ensure_ascii=False), cursor.high)
            if summaries:
                quiet = 0.0
        if quiet >= KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            quiet = 0.0
        await asyncio.sleep(poll)
        quiet += poll


async def events(request: Request) -> Response:
    """The route: `since` (or `Last-Event-ID`) says where to start."""
    since = request.headers.get("last-event-id") or request.query_params.get("since")
    try:
        start = parse_stamp(since) if since else utc_now()
    except ValueError:
        return PlainTextResponse(
            f"since={since!r} is not a time: give a store timestamp such as "
            f"{utc_now()}", status_code=400)
    home: HomePaths = request.app.state.home
    stopping: threading.Event = request.app.state.stopping
    return StreamingResponse(stream(home, Cursor(start), stopping=stopping),
                             media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})
