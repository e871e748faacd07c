"""The pages of `procctl ui`: instances, one instance, paused, signals, definitions.

Every page is read from the home's store, read-only (cli/options.py `read_store`, the
way `procctl list` reads it), in a worker thread (the handlers are plain functions:
Starlette runs them in its thread pool). Actions are not here: the page's JavaScript
(static/app.js) posts them to cli/web/actions.py. Every value from a process is text:
the templates are autoescaped and the script sets textContent only.

The app (cli/web/app.py) gives the pages the home and the token as `app.state.home`
(HomePaths) and `app.state.token` (str). Lists are keyset pages of PAGE rows (`after`,
never an offset, never a count of every row), so a page costs the same with a million
instances as with ten.

What the browser tests find in the pages (the contract with static/app.js):
- `#instances tbody tr[data-instance-id]`, its `.status` cell (`data-status`);
  `a.next-page` for the next page; the filter form `#filters`.
- the instance page: `#instance[data-instance-id]`, `#status` (`data-status`),
  `#history tbody tr[data-event-id]`, `pre.mermaid-source` (the graph),
  `form.resume-form`, `button.cancel`, `button.retry`, `.outcome` (an action's result).
- the paused page: `#paused tbody tr[data-instance-id]`, `time.countdown`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from procctl.agent.paths import HomePaths
from procctl.cli.options import has_store, read_store
from procctl.store.errors import NotFound, StoreError
from procctl.store.records import EventRecord, InstanceRecord, SignalStatus, Status

if TYPE_CHECKING:
    from jinja2 import Environment

    from procctl.agent.definition import Definition
    from procctl.agent.definition.model import PayloadField
    from procctl.store import StoreContract

T = TypeVar("T")

#: rows on a page of instances, paused instances or signals
PAGE = 50
#: history events an instance page shows (the newest)
HISTORY = 200
#: definitions the definitions page lists (the newest)
DEFINITIONS = 200
#: rejected signal files the signals page lists (the newest)
REJECTED_FILES = 50
#: the biggest rejected file's error note read (bytes)
ERROR_FILE_MAX = 64 * 1024
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATUSES = tuple(str(s) for s in Status)
#: the signal statuses the signals page lists (applied ones are in histories)
SIGNALS_SHOWN = (SignalStatus.PENDING, SignalStatus.REJECTED, SignalStatus.UNMATCHED,
                 SignalStatus.DUPLICATE)


class BadFilter(ValueError):
    """A filter of the instances page that cannot be read (shown on the page)."""


# -- rendering ------------------------------------------------------------------------


def _when(iso: str | None) -> str:
    """A store timestamp in local time, to the second ("-" for none)."""
    from procctl.cli.render import short_time

    return short_time(iso)


def _value(value: Any) -> str:
    """A process's value as text: a string as it is, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _duration(start: str | None, end: str | None) -> str:
    from procctl.cli.render import elapsed

    return elapsed(start, end)


@cache
def environment() -> Environment:
    """The templates, autoescaped (every value is text, never markup)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["value"] = _value
    env.filters["duration"] = _duration
    env.filters["query"] = lambda pairs: urlencode(
        [(k, v) for k, v in pairs.items() if v not in (None, "")])
    return env


def _page(request: Request, template: str, status_code: int = 200,
          **context: Any) -> HTMLResponse:
    text = environment().get_template(template).render(
        token=request.app.state.token, path=request.url.path, statuses=STATUSES,
        **context)
    return HTMLResponse(text, status_code=status_code)


def _problem(request: Request, message: str, status_code: int) -> HTMLResponse:
    """A page that says, in one line, what is wrong (an unknown ID, a bad filter)."""
    return _page(request, "problem.html", status_code, title="Not shown", message=message)


def _home(request: Request) -> HomePaths:
    home: HomePaths = request.app.state.home
    return home


def _read(request: Request, read: Callable[[StoreContract], T], empty: T) -> T:
    """`read` on the home's store, read-only; `empty` when the home has no store yet."""
    home = _home(request)
    if not has_store(home):
        return empty
    return read_store(home, read)


# -- instances ------------------------------------------------------------------------


@dataclass
class InstanceFilters:
    """The instances page's filters, from its query string."""

    status: str | None = None
    process: str | None = None
    correlation_id: str | None = None
    since: str | None = None
    until: str | None = None
    after: str | None = None

    @classmethod
    def of(cls, request: Request) -> InstanceFilters:
        params = request.query_params
        found = cls(**{name: (params.get(name) or "").strip() or None
                       for name in ("status", "process", "correlation_id", "since",
                                    "until", "after")})
        if found.status is not None and found.status not in STATUSES:
            raise BadFilter(f"status {found.status!r} is not one of {', '.join(STATUSES)}")
        return found

    def stamps(self) -> tuple[str | None, str | None]:
        """since and until as store timestamps (a duration back from now, or a time)."""
        import typer

        from procctl.cli.commands.listing import parse_when

        try:
            return (None if self.since is None else parse_when(self.since, "since"),
                    None if self.until is None else parse_when(self.until, "until"))
        except typer.BadParameter as exc:
            raise BadFilter(f"{exc.param_hint}: {exc.message}") from None

    def query(self, **changes: str | None) -> dict[str, str | None]:
        return {**{k: v for k, v in vars(self).items() if k != "after"}, **changes}


def instance_row(record: InstanceRecord) -> dict[str, Any]:
    """What a row of the instances table shows (no value decoded)."""
    error = json.loads(record.error_json) if record.error_json else None
    note = ""
    if isinstance(error, dict) and record.status != Status.COMPLETED:
        message = str(error.get("message") or error.get("reason") or "")
        note = f"{error['step_id']}: {message}" if error.get("step_id") else message
    return {"id": record.id, "process": record.process_name, "status": str(record.status),
            "started_at": record.started_at, "ended_at": record.ended_at,
            "updated_at": record.updated_at, "parent_id": record.parent_id, "note": note}


def read_instances(store: StoreContract, filters: InstanceFilters) -> list[InstanceRecord]:
    """A page of instances (PAGE + 1: the last one says there is a next page), newest
    first, by key. A correlation ID is looked up exactly (the instance that waits
    under it)."""
    since, until = filters.stamps()
    status = None if filters.status is None else Status(filters.status)
    if filters.correlation_id is not None:
        checkpoint = store.checkpoint_by_correlation(filters.correlation_id)
        if checkpoint is None:
            return []
        record = store.get_instance(checkpoint.instance_id)
        keep = ((status is None or record.status == status)
                and (filters.process is None or record.process_name == filters.process)
                and (since is None or record.started_at >= since)
                and (until is None or record.started_at < until))
        return [record] if keep and filters.after is None else []
    before = None
    if filters.after is not None:
        last = store.get_instance(filters.after)
        before = (last.started_at, last.id)
    return store.instances_page(status=status, process_name=filters.process, since=since,
                                until=until, before=before, limit=PAGE + 1)


def instances(request: Request) -> Response:
    """GET /: instances, newest first, filtered, a page at a time, live."""
    from procctl.store.clock import utc_now

    try:
        filters = InstanceFilters.of(request)
        records: list[InstanceRecord] = _read(
            request, lambda store: read_instances(store, filters), [])
    except BadFilter as exc:
        return _page(request, "instances.html", 400, title="Instances",
                     filters=InstanceFilters(), rows=[], next_query=None,
                     error=str(exc), since_stamp=utc_now(), live=False)
    except NotFound:
        return _problem(request, f"No instance {filters.after!r} to page after: "
                                 "start again from the first page.", 404)
    more = len(records) > PAGE
    records = records[:PAGE]
    next_query = (filters.query(after=records[-1].id) if more else None)
    return _page(request, "instances.html", title="Instances", filters=filters,
                 rows=[instance_row(r) for r in records], next_query=next_query,
                 error=None, since_stamp=utc_now(), live=filters.after is None)


# -- one instance ---------------------------------------------------------------------


@dataclass
class InstanceView:
    """Everything the instance page shows, read in one go."""

    summary: dict[str, Any]
    record: InstanceRecord
    events: list[dict[str, Any]]
    events_total: int
    explanation: dict[str, Any]
    stored: Any = None
    position: str | None = None
    snapshot_problem: str | None = None
    children: list[dict[str, Any]] = field(default_factory=list)
    waiting_for: dict[str, Any] | None = None
    expects: list[PayloadField] | None = None
    graph: str | None = None
    marked_step: str | None = None
    #: the actions the page offers (cli/web/actions.py does them)
    can_resume: bool = False
    can_cancel: bool = False
    can_retry: bool = False


def event_json(event: EventRecord) -> dict[str, Any]:
    """A history event as the page (and its live updates) show it."""
    data = json.loads(event.data_json)
    return {"id": event.id, "at": event.at, "when": _when(event.at), "kind": event.kind,
            "step_id": event.step_id, "detail": event_detail(event.kind, data)}


def event_detail(kind: str, data: Any) -> str:
    """An event's detail, as text on one line (as `procctl show` gives it)."""
    if not isinstance(data, dict):
        return _value(data)
    if kind == "intermediate_return":
        value = data.get("value")
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                               default=str)
    if kind == "step_finished":
        return f"{data.get('duration', 0):.2f}s"
    if kind == "child_started":
        return f"child instance {data.get('instance_id')}"
    if kind == "branch_taken":
        taken = data.get("branch") or ", ".join(map(str, data.get("branches", [])))
        return f"took {taken or 'no branch'}"
    detail = data.get("message") or data.get("error") or data.get("reason") or ""
    if isinstance(detail, dict):
        detail = detail.get("message", "")
    return str(detail)


def _marked(summary: dict[str, Any], running_step: str | None) -> tuple[str | None, bool]:
    """The step the graph marks, and whether it is where the instance failed."""
    error = summary.get("error") or {}
    if summary["status"] == Status.FAILED and isinstance(error, dict) and error.get("step_id"):
        return str(error["step_id"]), True
    checkpoint = summary.get("checkpoint")
    if checkpoint and summary["status"] in (Status.PAUSED, Status.FAILED):
        return str(checkpoint["step_id"]), summary["status"] == Status.FAILED
    return running_step, False


def graph_text(definition: Definition | None, step_id: str | None,
               failed: bool = False) -> str | None:
    """The definition's Mermaid text with `step_id` marked (cli/web/graph.py), or None
    when there is no graph to draw (no definition, or no graph module)."""
    if definition is None:
        return None
    try:
        from procctl.cli.web.graph import graph_source
    except ImportError:
        return None
    return graph_source(definition, step_id, failed)


def read_instance(store: StoreContract, instance_id: str) -> InstanceView:
    from procctl.agent import snapshot as snapshots
    from procctl.agent import values
    from procctl.agent.explaining import explain
    from procctl.agent.summary import instance_summary, waiting_for
    from procctl.cli.payload_hints import expected_fields, missing_payload_field

    record = store.get_instance(instance_id)
    checkpoint = store.find_checkpoint(record.id)
    summary = instance_summary(record, checkpoint)
    explanation = explain(store, record.id)
    total = store.count_events(record.id)
    events = [event_json(e) for e in store.last_events(record.id, HISTORY)]
    view = InstanceView(summary=summary, record=record, events=events, events_total=total,
                        explanation=explanation.to_json(),
                        waiting_for=waiting_for(record, store.get_instance))
    view.children = [{"id": e["detail"].removeprefix("child instance ")}
                     for e in events if e["kind"] == "child_started"]
    if checkpoint is not None:
        try:
            stored = snapshots.loads(checkpoint.snapshot_json)
        except ValueError as exc:  # SnapshotError: not one this procctl reads
            view.snapshot_problem = f"its snapshot cannot be read: {exc}"
        else:
            view.stored = values.to_plain(stored.variables)
            view.position = str(stored.hydration_point)
        if (view.waiting_for is None and explanation.definition is not None
                and record.status in (Status.PAUSED, Status.FAILED)):
            view.expects = expected_fields(explanation.definition, checkpoint.step_id)
    view.can_resume = ("resume_command" in summary and view.waiting_for is None
                       and checkpoint is not None)
    view.can_cancel = record.status in (Status.RUNNING, Status.PAUSED)
    # a retry of one that failed on a missing payload field fails the same way
    view.can_retry = ("retry_command" in summary
                      and missing_payload_field(summary) is None)
    running = explanation.running_step[0] if explanation.running_step else None
    view.marked_step, failed = _marked(summary, running)
    view.graph = graph_text(explanation.definition, view.marked_step, failed)
    return view


def instance(request: Request) -> Response:
    """GET /instances/{id}: one instance, with its graph, history and actions."""
    from procctl.store.clock import utc_now

    instance_id = request.path_params["instance_id"]
    try:
        view = _read(request, lambda store: read_instance(store, instance_id), None)
    except NotFound as exc:
        return _problem(request, str(exc), 404)
    except StoreError as exc:  # an ambiguous prefix
        return _problem(request, str(exc), 400)
    if view is None:
        return _problem(request, f"No instance {instance_id!r}: the home has no store yet.",
                        404)
    return _page(request, "instance.html", title=f"Instance {view.record.id}", view=view,
                 s=view.summary, graph=view.graph, since_stamp=utc_now())


def history(request: Request) -> Response:
    """GET /instances/{id}/history?after=EVENT_ID: the events after that one (JSON), for
    the instance page's live history, and the instance's status."""
    instance_id = request.path_params["instance_id"]
    try:
        after = int(request.query_params.get("after") or 0)
    except ValueError:
        return JSONResponse({"error": "after must be an event ID (a number)"}, 400)

    def read(store: StoreContract) -> dict[str, Any]:
        record = store.get_instance(instance_id)
        events = store.events(record.id, after)[:HISTORY]
        return {"instance_id": record.id, "status": str(record.status),
                "events": [event_json(e) for e in events]}

    try:
        found = _read(request, read, None)
    except NotFound as exc:
        return JSONResponse({"error": str(exc)}, 404)
    if found is None:
        return JSONResponse({"error": "the home has no store yet"}, 404)
    return JSONResponse(found)


# -- paused ---------------------------------------------------------------------------


def fields_json(fields: list[PayloadField] | None) -> list[dict[str, Any]] | None:
    if fields is None:
        return None
    return [{"name": f.name, "type": f.type, "optional": f.optional, "declared": f.declared}
            for f in fields]


def _cursor(paused_at: str | None, instance_id: str) -> str:
    return f"{paused_at}/{instance_id}"


def read_paused(store: StoreContract, process: str | None,
                before: tuple[str, str] | None) -> list[dict[str, Any]]:
    """A page of paused instances (PAGE + 1), newest first, each with what its resume
    must carry (the definitions each parsed once)."""
    from procctl.agent.calls import called_child
    from procctl.agent.errors import DefinitionError
    from procctl.cli import payload_hints

    rows = store.list_paused(process_name=process, limit=PAGE + 1, before=before)
    definitions: dict[str, Definition | None] = {}
    out = []
    for row in rows:
        record, checkpoint = row.instance, row.checkpoint
        sha = record.definition_sha256
        if sha not in definitions:
            try:
                definitions[sha] = payload_hints.pinned_definition(store, sha)
            except (DefinitionError, NotFound):
                definitions[sha] = None
        definition = definitions[sha]
        child = called_child(checkpoint.correlation_id)
        expects = (None if child is not None or definition is None
                   else payload_hints.expected_fields(definition, checkpoint.step_id))
        out.append({"id": record.id, "process": record.process_name,
                    "correlation_id": checkpoint.correlation_id,
                    "step_id": checkpoint.step_id, "paused_at": record.paused_at,
                    "expires_at": checkpoint.expires_at, "resume_at": checkpoint.resume_at,
                    "iteration": checkpoint.iteration, "child_id": child,
                    "expects": expects, "readable": definition is not None,
                    "cursor": _cursor(record.paused_at, record.id)})
    return out


def paused(request: Request) -> Response:
    """GET /paused: what waits, for what, until when; a resume form for each."""
    from procctl.store.clock import utc_now

    process = (request.query_params.get("process") or "").strip() or None
    after = request.query_params.get("after") or None
    before = None
    if after is not None:
        paused_at, sep, instance_id = after.rpartition("/")
        if not sep or not paused_at or not instance_id:
            return _problem(request, f"after {after!r} is not a cursor of the paused page: "
                                     "start again from the first page.", 400)
        before = (paused_at, instance_id)
    rows: list[dict[str, Any]] = _read(
        request, lambda store: read_paused(store, process, before), [])
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    next_query = {"process": process, "after": rows[-1]["cursor"]} if more else None
    return _page(request, "paused.html", title="Paused", rows=rows, process=process,
                 next_query=next_query, since_stamp=utc_now())


# -- signals --------------------------------------------------------------------------


def _signals_dir(home: HomePaths) -> Path:
    from procctl.cli.commands.paused import signals_directory

    return signals_directory(home)


def rejected_files(directory: Path, limit: int = REJECTED_FILES) -> list[dict[str, Any]]:
    """The newest rejected signal files (rejected/NAME + NAME.error.json): the file, why
    it was refused and when."""
    from procctl.agent.signals import REJECTED

    folder = directory / REJECTED
    try:
        notes = [e for e in os.scandir(folder)
                 if e.name.endswith(".error.json") and e.is_file(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    notes.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
    out = []
    for entry in notes[:limit]:
        note: dict[str, Any] = {}
        try:
            with open(entry.path, "rb") as file:
                read = json.loads(file.read(ERROR_FILE_MAX))
            note = read if isinstance(read, dict) else {}
        except (OSError, ValueError):
            pass
        out.append({"name": entry.name.removesuffix(".error.json"),
                    "file": str(note.get("file") or ""),
                    "reason": str(note.get("reason") or "(no reason recorded)"),
                    "rejected_at": note.get("rejected_at")})
    return out


def signals(request: Request) -> Response:
    """GET /signals: held, unmatched, refused and repeated signals, with their reasons;
    signal files not read yet and the newest refused files."""
    from procctl.agent import signals as protocol
    from procctl.agent.summary import signal_summary

    home = _home(request)
    rows: list[dict[str, Any]] = _read(request, lambda store: [
        signal_summary(r) for r in store.list_signals(SIGNALS_SHOWN, PAGE * 4)], [])
    directory = _signals_dir(home)
    waiting = [p.name for p in protocol.scan(directory)][:PAGE]
    return _page(request, "signals.html", title="Signals", rows=rows, directory=str(directory),
                 waiting=waiting, rejected=rejected_files(directory))


# -- definitions ----------------------------------------------------------------------


def list_definitions(store: StoreContract, limit: int = DEFINITIONS) -> list[dict[str, Any]]:
    """The newest pinned definitions (without their text)."""
    return [vars(d) for d in store.list_definitions(limit)]


def definitions(request: Request) -> Response:
    """GET /definitions: the pinned definitions, newest first."""
    rows: list[dict[str, Any]] = _read(request, lambda store: list_definitions(store), [])
    return _page(request, "definitions.html", title="Definitions", rows=rows,
                 limit=DEFINITIONS)


def definition(request: Request) -> Response:
    """GET /definitions/{sha}: one pinned definition's text and graph."""
    from procctl.agent.explaining import stored_definition

    sha = request.path_params["sha"]

    def read(store: StoreContract) -> tuple[Any, Definition | None]:
        return store.get_definition(sha), stored_definition(store, sha)

    try:
        found = _read(request, read, None)
    except NotFound:
        found = None
    except StoreError as exc:
        return _problem(request, str(exc), 400)
    if found is None:
        return _problem(request, f"No definition {sha!r} is pinned in the store.", 404)
    record, parsed = found
    children = json.loads(record.children_json or "{}")
    return _page(request, "definition.html", title=f"Definition {record.name}", d=record,
                 graph=graph_text(parsed, None), children=children,
                 readable=parsed is not None)


ROUTES: list[Route] = [
    Route("/", instances, methods=["GET"], name="instances"),
    Route("/instances/{instance_id}", instance, methods=["GET"], name="instance"),
    Route("/instances/{instance_id}/history", history, methods=["GET"], name="history"),
    Route("/paused", paused, methods=["GET"], name="paused"),
    Route("/signals", signals, methods=["GET"], name="signals"),
    Route("/definitions", definitions, methods=["GET"], name="definitions"),
    Route("/definitions/{sha}", definition, methods=["GET"], name="definition"),
]
