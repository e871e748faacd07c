"""The snapshot format (docs/snapshot-format.md) and what liveness decides it stores.

tests/data/snapshot-v1.json is a real snapshot, taken from an instance of EXAMPLE
paused at its second checkpoint inside a foreach loop. It must keep loading: a change
of the format bumps snapshot.VERSION and adds a step to snapshot.MIGRATIONS, and this
file is the version-1 document that the chain must still read.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from procctl.agent import snapshot as snapshots
from procctl.agent.definition import parse_definition
from procctl.agent.definition.model import Liveness
from procctl.agent.snapshot import Frame, Snapshot, SnapshotError

DATA = Path(__file__).resolve().parents[1] / "data"
V1_FILE = DATA / "snapshot-v1.json"

# The definition the example snapshot was taken from, byte for byte (its SHA-256 is the
# snapshot's definition_sha256). It ran with blob.bin holding b"hello\x00\xff", was
# resumed once at `approve` with {"approved": true}, and paused there again for "A-2".
EXAMPLE = """\
[process]
name = "typed-batch"
version = "3"

[process.params.orders]
type = "list"
default = ["A-1", "A-2"]

[[steps]]
id = "load"
task = "file.read"
with = { path = "blob.bin", format = "bytes" }

[[steps]]
id = "raw"
kind = "set"
values = { limit_text = "inf", order = "none yet" }

[[steps]]
id = "prepare"
kind = "set"
values = { started = "{{ now() }}", day = "{{ today() }}", limit = "{{ limit_text | float }}", \
by_code = "{{ {1: 'one', 2: 'two'} }}", blob = "{{ results['load'] }}", \
unused = "not read after the checkpoint" }

[[steps]]
id = "each"
kind = "foreach"
items = "orders"
as = "order"
index_as = "i"

    [[steps.body]]
    id = "approve"
    kind = "checkpoint"
    correlation_id = "typed-{{ order }}"
    ttl = 60

    [[steps.body]]
    id = "note"
    task = "log"
    with = { message = "{{ order }} {{ results['approve'].payload }} {{ started }} \
{{ day }} {{ limit }} {{ by_code }} {{ blob | length }}" }

[[steps]]
id = "done"
kind = "return"
value = { each = "{{ results['each'] }}", prepared = "{{ results['prepare'].day }}", \
last = "{{ order }}" }
"""


def _snapshot(**changes: Any) -> Snapshot:
    fields: dict[str, Any] = {
        "instance_id": "0123456789ab",
        "process_name": "p",
        "process_version": None,
        "definition_sha256": "0" * 64,
        "checkpoint_id": "cp",
        "hydration_point": "steps[0]",
        "correlation_id": "corr-1",
        "position": (Frame("steps", 0),),
        "variables": {},
        "results": {},
        "iteration": 0,
        "original_start_utc": "2026-11-26T02:16:15.975829+00:00",
        "trigger_id": "cli",
        "created_at": "2026-11-26T02:16:17.037763+00:00",
        "extra": {},
    }
    fields.update(changes)
    return Snapshot(**fields)


# -- the version-1 file ---------------------------------------------------------------


def test_the_version_1_example_loads() -> None:
    loaded = snapshots.loads(V1_FILE.read_text(encoding="utf-8"))
    assert loaded.instance_id == "4eba46df97e6"
    assert (loaded.process_name, loaded.process_version) == ("typed-batch", "3")
    assert loaded.checkpoint_id == "approve"
    assert loaded.hydration_point == "steps[3].body[0]"
    assert loaded.correlation_id == "typed-A-2"
    assert loaded.trigger_id == "cli"
    assert loaded.iteration == 0
    assert loaded.extra == {}
    assert datetime.fromisoformat(loaded.created_at) > datetime.fromisoformat(
        loaded.original_start_utc)


def test_the_example_keeps_its_types() -> None:
    variables = snapshots.loads(V1_FILE.read_text(encoding="utf-8")).variables
    assert variables["blob"] == b"hello\x00\xff"
    assert variables["by_code"] == {1: "one", 2: "two"}
    assert variables["day"] == date(2026, 11, 26)
    assert variables["limit"] == math.inf
    assert variables["order"] == "A-2"
    started = variables["started"]
    assert isinstance(started, datetime) and started.utcoffset() == timedelta(0)
    assert set(variables) == {"blob", "by_code", "day", "limit", "order", "started"}


def test_the_example_position_holds_the_loop_state() -> None:
    loaded = snapshots.loads(V1_FILE.read_text(encoding="utf-8"))
    top, body = loaded.position
    assert top == Frame("steps", 3)
    assert (body.block, body.index) == ("body", 0)
    assert body.loop is not None
    assert body.loop["items"] == ["A-1", "A-2"]
    assert body.loop["index"] == 1
    assert len(body.loop["results"]) == 1 and body.loop["results"][0].startswith("A-1 ")
    assert body.loop["shadowed"] == {"order": "none yet"}


def test_the_example_matches_its_definition_and_liveness() -> None:
    loaded = snapshots.loads(V1_FILE.read_text(encoding="utf-8"))
    assert hashlib.sha256(EXAMPLE.encode()).hexdigest() == loaded.definition_sha256
    definition = parse_definition(EXAMPLE)
    live = definition.liveness["approve"]
    # Stored: the live variables that existed; `unused`, `limit_text`, `orders` and the
    # index `i` are read by no step after the checkpoint.
    assert set(loaded.variables) == live.variables
    assert live.results == {"each", "prepare"}
    # results['each'] did not exist yet (the loop runs); results['prepare'] did.
    assert set(loaded.results) == {"prepare"}
    assert loaded.results["prepare"]["unused"] == "not read after the checkpoint"
    step = next(s for s in definition.all_steps() if s.id == loaded.checkpoint_id)
    assert step.path == loaded.hydration_point


def test_the_example_round_trips() -> None:
    loaded = snapshots.loads(V1_FILE.read_text(encoding="utf-8"))
    assert snapshots.loads(snapshots.dumps(loaded)) == loaded
    document = json.loads(snapshots.dumps(loaded))
    assert document == json.loads(V1_FILE.read_text(encoding="utf-8"))


# -- round trips ------------------------------------------------------------------------

EVERY_TYPE: dict[str, Any] = {
    "text": "héllo {{ not a template }}",
    "empty": "",
    "int": 42,
    "big": 2**80,
    "negative": -7,
    "float": 0.1,
    "inf": math.inf,
    "minus_inf": -math.inf,
    "true": True,
    "false": False,
    "none": None,
    "list": [1, "two", None, [3.5, False]],
    "dict": {"a": 1, "nested": {"b": [1, 2], "c": None}},
    "aware": datetime(2026, 11, 26, 2, 16, 15, 981228, tzinfo=UTC),
    "offset": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
    "naive": datetime(2026, 1, 2, 3, 4, 5),
    "date": date(2026, 2, 28),
    "decimal": Decimal("1234.5600"),
    "decimal_exp": Decimal("-1E+3"),
    "bytes": b"\x00\xffbinary",
    "int_keys": {1: "one", 2: "two"},
    "mixed_keys": {None: 0, True: "yes", 2.5: "x", date(2026, 1, 1): "new year"},
    "tuple_keys": {(1, 2): "pair", (3, (4, 5)): "nested"},
    "dollar_type_key": {"$type": "not a marker", "value": 1},
    "deep": [{"when": date(2026, 3, 1), "amount": Decimal("9.99"), "raw": b"x"}],
}


def test_every_supported_type_round_trips() -> None:
    original = _snapshot(variables=dict(EVERY_TYPE), results={"step-a": dict(EVERY_TYPE)},
                         extra={"note": Decimal("0.5")})
    again = snapshots.loads(snapshots.dumps(original))
    assert again == original
    for name, value in EVERY_TYPE.items():
        assert type(again.variables[name]) is type(value), name
    assert str(again.variables["decimal"]) == "1234.5600"
    assert again.variables["offset"].utcoffset() == timedelta(hours=-5)
    assert again.variables["naive"].tzinfo is None


def test_nan_round_trips() -> None:
    again = snapshots.loads(snapshots.dumps(_snapshot(variables={"x": math.nan})))
    assert math.isnan(again.variables["x"])


def test_tuples_come_back_as_lists() -> None:
    again = snapshots.loads(snapshots.dumps(_snapshot(variables={"t": (1, (2, 3))})))
    assert again.variables["t"] == [1, [2, 3]]


def test_frames_with_loop_state_round_trip() -> None:
    loop = {
        "items": [{"id": 1, "due": date(2026, 5, 1)}, {"id": 2, "due": None}],
        "index": 1,
        "results": [Decimal("2.50"), {"at": datetime(2026, 5, 1, tzinfo=UTC)}],
        "shadowed": {"item": b"outer value", "i": 3},
    }
    inner = {"items": [[1, "a"], [2, "b"]], "index": 0, "results": [], "shadowed": {}}
    position = (Frame("steps", 4), Frame("body", 2, loop), Frame("then", 0),
                Frame("body", 1, inner))
    original = _snapshot(position=position, hydration_point="steps[4].body[2].then[0].body[1]")
    again = snapshots.loads(snapshots.dumps(original))
    assert again == original
    assert again.position[1].loop == loop
    assert again.position[2].loop is None


def test_the_document_has_the_documented_keys() -> None:
    document = json.loads(snapshots.dumps(_snapshot(process_version="2")))
    assert list(document) == [
        "format", "version", "instance_id", "process", "definition_sha256", "checkpoint_id",
        "hydration_point", "correlation_id", "position", "variables", "results",
        "iteration", "original_start_utc", "trigger_id", "created_at", "extra"]
    assert document["format"] == "procctl.snapshot"
    assert document["version"] == snapshots.VERSION == 1
    assert document["process"] == {"name": "p", "version": "2"}
    assert document["position"] == [{"block": "steps", "index": 0}]


def test_a_value_that_cannot_be_stored_is_refused_when_saving() -> None:
    with pytest.raises(TypeError, match="set cannot be stored"):
        snapshots.dumps(_snapshot(variables={"s": {1, 2}}))


# -- refusals ----------------------------------------------------------------------------


def test_a_newer_version_is_refused() -> None:
    document = json.loads(V1_FILE.read_text(encoding="utf-8"))
    document["version"] = snapshots.VERSION + 1
    with pytest.raises(SnapshotError, match=r"format version 2 is newer than this procctl "
                                            r"reads \(1\)"):
        snapshots.loads(json.dumps(document))


@pytest.mark.parametrize("version", [0, -1, "1", None, 1.5])
def test_a_bad_version_is_refused(version: Any) -> None:
    document = json.loads(V1_FILE.read_text(encoding="utf-8"))
    document["version"] = version
    with pytest.raises(SnapshotError, match="no valid version"):
        snapshots.loads(json.dumps(document))


@pytest.mark.parametrize("text", ['{"instance_id": "x"}', "[1, 2]", '"snapshot"',
                                  '{"format": "other", "version": 1}'])
def test_a_document_that_is_not_a_snapshot_is_refused(text: str) -> None:
    with pytest.raises(SnapshotError, match=r"not a procctl snapshot \(no format key\)"):
        snapshots.loads(text)


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(SnapshotError, match="snapshot is not JSON"):
        snapshots.loads("{not json")


def test_a_missing_field_is_refused() -> None:
    document = json.loads(V1_FILE.read_text(encoding="utf-8"))
    del document["correlation_id"]
    with pytest.raises(SnapshotError, match="missing a field: 'correlation_id'"):
        snapshots.loads(json.dumps(document))


def test_an_unknown_value_type_is_refused() -> None:
    document = json.loads(V1_FILE.read_text(encoding="utf-8"))
    document["variables"]["odd"] = {"$type": "complex", "value": "1+2j"}
    with pytest.raises(ValueError, match="unknown \\$type 'complex'"):
        snapshots.loads(json.dumps(document))


# -- migrations ----------------------------------------------------------------------------


def test_an_older_version_is_migrated_one_step_at_a_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the current version is 3: the v1 file goes through MIGRATIONS[1], then [2]."""
    seen: list[int] = []

    def one_to_two(document: dict[str, Any]) -> dict[str, Any]:
        seen.append(document["version"])
        return {**document, "extra": {**document["extra"], "steps": ["1->2"]}}

    def two_to_three(document: dict[str, Any]) -> dict[str, Any]:
        seen.append(document["version"])
        return {**document, "extra": {"steps": [*document["extra"]["steps"], "2->3"]}}

    monkeypatch.setattr(snapshots, "VERSION", 3)
    monkeypatch.setitem(snapshots.MIGRATIONS, 1, one_to_two)
    monkeypatch.setitem(snapshots.MIGRATIONS, 2, two_to_three)
    loaded = snapshots.loads(V1_FILE.read_text(encoding="utf-8"))
    assert seen == [1, 2]
    assert loaded.extra == {"steps": ["1->2", "2->3"]}
    assert loaded.correlation_id == "typed-A-2"


def test_every_older_version_has_a_migration() -> None:
    assert sorted(snapshots.MIGRATIONS) == list(range(1, snapshots.VERSION))


# -- liveness: what each checkpoint stores -----------------------------------------------


def _liveness(steps: str, params: str = "", checkpoint: str = "cp") -> Liveness:
    source = f'[process]\nname = "live"\n{params}\n{steps}'
    return parse_definition(source).liveness[checkpoint]


def test_variables_read_only_before_the_checkpoint_are_not_stored() -> None:
    live = _liveness("""
[[steps]]
id = "set"
kind = "set"
values = { early = 1, late = 2, never = 3 }

[[steps]]
id = "use-early"
task = "log"
with = { message = "{{ early }}" }

[[steps]]
id = "cp"
kind = "checkpoint"

[[steps]]
id = "use-late"
task = "log"
with = { message = "{{ late }} {{ process.name }} {{ now() }} {{ result }}" }
""")
    assert live.variables == {"late"}
    assert live.results == frozenset()
    assert not live.all_results


def test_params_read_later_are_stored_and_others_are_not() -> None:
    live = _liveness("""
[[steps]]
id = "cp"
kind = "checkpoint"
correlation_id = "c-{{ key }}"

[[steps]]
id = "after"
kind = "return"
value = "{{ amount }}"
""", params='[process.params]\nkey = "str"\namount = "int"\n')
    # The correlation ID is evaluated before the snapshot: `key` is not needed after it.
    assert live.variables == {"amount"}


def test_a_loop_body_back_edge_keeps_what_earlier_steps_of_the_body_read() -> None:
    live = _liveness("""
[[steps]]
id = "init"
kind = "set"
values = { total = 0, tag = "t", after_loop = 1, before_only = 2 }

[[steps]]
id = "use-before"
task = "log"
with = { message = "{{ before_only }}" }

[[steps]]
id = "loop"
kind = "foreach"
items = "[1, 2, 3]"
as = "n"

    [[steps.body]]
    id = "add"
    kind = "set"
    values = { total = "{{ total + n }}", label = "{{ tag }}" }

    [[steps.body]]
    id = "cp"
    kind = "checkpoint"
    continue = true

[[steps]]
id = "done"
kind = "return"
value = "{{ total }} {{ after_loop }}"
""")
    # `add` runs again in the next iteration: `total`, `n` and `tag` are live.
    assert live.variables == {"total", "n", "tag", "after_loop"}
    assert "before_only" not in live.variables


def test_an_enclosing_foreach_body_counts_from_inside_a_branch() -> None:
    live = _liveness("""
[[steps]]
id = "init"
kind = "set"
values = { seen = 0, limit = 2, tail = "t", other = "o" }

[[steps]]
id = "outer"
kind = "foreach"
items = "range(3)"
as = "i"

    [[steps.body]]
    id = "count"
    task = "log"
    with = { message = "{{ seen }}" }

    [[steps.body]]
    id = "maybe"
    kind = "if"
    condition = "i < limit"

        [[steps.body.then]]
        id = "cp"
        kind = "checkpoint"

        [[steps.body.then]]
        id = "in-branch"
        task = "log"
        with = { message = "{{ i }}" }

        [[steps.body.else]]
        id = "other-branch"
        task = "log"
        with = { message = "{{ other }}" }

[[steps]]
id = "end"
kind = "return"
value = "{{ tail }}"
""")
    # The whole loop body runs again (count, maybe with both branches), then `end`.
    assert live.variables == {"seen", "limit", "i", "other", "tail"}


def test_recover_block_reads_are_stored_and_commit_block_reads_are_not() -> None:
    live = _liveness("""
[[steps]]
id = "init"
kind = "set"
values = { on_commit = 1, on_recover = 2 }

[[steps]]
id = "cp"
kind = "checkpoint"
continue = true

    [[steps.commit]]
    id = "first"
    task = "log"
    with = { message = "{{ on_commit }}" }

    [[steps.recover]]
    id = "again"
    task = "log"
    with = { message = "{{ on_recover }}" }
""")
    # commit runs right after the snapshot, before any pause; recover runs on a resume.
    assert live.variables == {"on_recover"}


def test_results_read_later_are_stored() -> None:
    live = _liveness("""
[[steps]]
id = "fetch"
task = "log"
with = { message = "a" }

[[steps]]
id = "count"
task = "log"
with = { message = "b" }

[[steps]]
id = "early"
task = "log"
with = { message = "{{ results['count'] }}" }

[[steps]]
id = "cp"
kind = "checkpoint"

[[steps]]
id = "late"
task = "log"
with = { message = "{{ results['fetch'] }} {{ results[\\"early\\"] }}" }
""")
    assert live.results == {"fetch", "early"}
    assert not live.all_results
    assert live.variables == frozenset()


def test_dynamic_results_access_stores_every_result() -> None:
    live = _liveness("""
[[steps]]
id = "init"
kind = "set"
values = { which = "a" }

[[steps]]
id = "a"
task = "log"
with = { message = "a" }

[[steps]]
id = "cp"
kind = "checkpoint"

[[steps]]
id = "pick"
task = "log"
with = { message = "{{ results[which] }}" }
""")
    assert live.all_results
    assert live.variables == {"which"}


def test_reading_the_whole_results_table_stores_every_result() -> None:
    live = _liveness("""
[[steps]]
id = "cp"
kind = "checkpoint"

[[steps]]
id = "all"
kind = "return"
value = "{{ results | length }}"
""")
    assert live.all_results


def test_the_checkpoints_own_result_is_not_stored() -> None:
    live = _liveness("""
[[steps]]
id = "before"
task = "log"
with = { message = "x" }

[[steps]]
id = "cp"
kind = "checkpoint"

[[steps]]
id = "decide"
kind = "if"
condition = "results['cp'].payload.ok and results['before']"
then = []
""")
    # results['cp'] is rebuilt when the instance resumes (payload, resumed_by, ...).
    assert live.results == {"before"}


def test_every_checkpoint_has_its_own_liveness() -> None:
    source = """
[process]
name = "two"

[[steps]]
id = "init"
kind = "set"
values = { a = 1, b = 2 }

[[steps]]
id = "first"
kind = "checkpoint"

[[steps]]
id = "use-a"
task = "log"
with = { message = "{{ a }} {{ b }}" }

[[steps]]
id = "second"
kind = "checkpoint"

[[steps]]
id = "use-b"
task = "log"
with = { message = "{{ b }}" }
"""
    liveness = parse_definition(source).liveness
    assert set(liveness) == {"first", "second"}
    assert liveness["first"].variables == {"a", "b"}
    assert liveness["second"].variables == {"b"}
