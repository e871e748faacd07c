"""The snapshot format (docs/snapshot-format.md) and what liveness decides it stores.

tests/data/snapshot-v1.json is a real snapshot, taken from an instance of EXAMPLE
paused at its second checkpoint inside a foreach loop. It must keep loading: a change
of the format bumps snapshot.VERSION and adds a step to snapshot.MIGRATIONS, and this
file is the version-1 document that the chain must still read (version 2 tags each
frame state with its kind: MIGRATIONS[1]).
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
from procctl.agent.engine.frames import (
    FRAME_STATES,
    CatchState,
    CaughtError,
    FinallyState,
    ForeachState,
    FrameState,
    InclusiveState,
    WhileState,
)
from procctl.agent.snapshot import Frame, Snapshot, SnapshotError

DATA = Path(__file__).resolve().parents[1] / "data"
V1_FILE = DATA / "snapshot-v1.json"
V2_FILE = DATA / "snapshot-v2.json"  # the same instance's snapshot, as version 2 wrote it

# The definition the example snapshot was taken from, byte for byte (its SHA-256 is the
# snapshot's definition_sha256). It ran with blob.bin holding b"hello\x00\xff", was
# resumed once at `approve` with {"approved": true}, and paused there again for "A-2".
EXAMPLE = (DATA / "snapshot-v1.toml").read_text(encoding="utf-8")


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
    assert isinstance(body.state, ForeachState)
    assert body.state.items == ("A-1", "A-2")
    assert body.state.index == 1
    assert len(body.state.results) == 1 and body.state.results[0].startswith("A-1 ")
    assert body.state.shadowed == {"order": "none yet"}


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


def test_the_example_round_trips_as_version_2() -> None:
    """Written again, the example is the version-1 document with its frame state
    tagged (under "state", was "loop"), and nothing else changed."""
    loaded = snapshots.loads(V1_FILE.read_text(encoding="utf-8"))
    assert snapshots.loads(snapshots.dumps(loaded)) == loaded
    document = json.loads(snapshots.dumps(loaded))
    v1 = json.loads(V1_FILE.read_text(encoding="utf-8"))
    loop = v1["position"][1].pop("loop")
    v1["position"][1]["state"] = {"kind": "foreach", **loop}
    assert document == {**v1, "version": 2}


def test_the_version_2_example_reads_and_writes_back_the_same() -> None:
    text = V2_FILE.read_text(encoding="utf-8")
    loaded = snapshots.loads(text)
    assert loaded.definition_sha256 == hashlib.sha256(EXAMPLE.encode()).hexdigest()
    top, body = loaded.position
    assert top == Frame("steps", 3)
    assert isinstance(body.state, ForeachState)
    assert (body.state.items, body.state.index) == (("A-1", "A-2"), 1)
    assert body.state.shadowed == {"order": "none yet"}
    assert loaded.variables["blob"] == b"hello\x00\xff"
    assert json.loads(snapshots.dumps(loaded)) == json.loads(text)


def test_both_examples_hold_the_same_state() -> None:
    v1 = snapshots.loads(V1_FILE.read_text(encoding="utf-8"))
    v2 = snapshots.loads(V2_FILE.read_text(encoding="utf-8"))
    assert set(v1.variables) == set(v2.variables)
    one, two = v1.position[1].state, v2.position[1].state
    assert isinstance(one, ForeachState) and isinstance(two, ForeachState)
    assert (one.items, one.index, one.shadowed) == (two.items, two.index, two.shadowed)


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


ERROR = CaughtError("boom 0", "boom", "steps[0].do[0]", "thrown")

#: one of every frame state, with typed values in it
EVERY_STATE: list[FrameState] = [
    ForeachState(items=({"id": 1, "due": date(2026, 5, 1)}, {"id": 2, "due": None}),
                 index=1, results=(Decimal("2.50"), {"at": datetime(2026, 5, 1, tzinfo=UTC)}),
                 shadowed={"item": b"outer value", "i": 3}),
    WhileState(index=2, results=(math.inf, [1, [2, 3]], {1: "int key"}), shadowed={}),
    InclusiveState(selected=("branches[0]", "branches[2]"), results={"a": date(2026, 1, 1)}),
    CatchState(error=ERROR, shadowed={"error": {"$type": "not a tag"}}),
    FinallyState(value=Decimal("1.0"), error=None),
    FinallyState(value=None, error=ERROR),
]


def test_every_frame_state_is_registered_with_its_own_tag() -> None:
    assert set(FRAME_STATES.values()) == set(FrameState.__subclasses__())
    assert {cls.TAG: cls for cls in FRAME_STATES.values()} == FRAME_STATES
    assert {type(state) for state in EVERY_STATE} == set(FRAME_STATES.values())


@pytest.mark.parametrize("state", EVERY_STATE, ids=lambda s: type(s).__name__)
def test_every_frame_state_round_trips(state: FrameState) -> None:
    position = (Frame("steps", 4), Frame("body", 2, state), Frame("then", 0))
    original = _snapshot(position=position, hydration_point="steps[4].body[2].then[0]")
    again = snapshots.loads(snapshots.dumps(original))
    back = again.position[1].state
    assert type(back) is type(state)
    assert back == state
    assert again == original
    document = json.loads(snapshots.dumps(original))
    assert document["position"][1]["state"]["kind"] == state.TAG


def test_frames_with_state_round_trip_equal() -> None:
    loop = EVERY_STATE[0]
    inner = ForeachState(items=([1, "a"], [2, "b"]), index=0, results=(), shadowed={})
    position = (Frame("steps", 4), Frame("body", 2, loop), Frame("then", 0),
                Frame("body", 1, inner))
    original = _snapshot(position=position, hydration_point="steps[4].body[2].then[0].body[1]")
    again = snapshots.loads(snapshots.dumps(original))
    assert again == original
    assert again.position[1].state == loop
    assert again.position[2].state is None


def test_the_document_has_the_documented_keys() -> None:
    document = json.loads(snapshots.dumps(_snapshot(process_version="2")))
    assert list(document) == [
        "format", "version", "instance_id", "process", "definition_sha256", "checkpoint_id",
        "hydration_point", "correlation_id", "position", "variables", "results",
        "iteration", "original_start_utc", "trigger_id", "created_at", "extra"]
    assert document["format"] == "procctl.snapshot"
    assert document["version"] == snapshots.VERSION == 2
    assert document["process"] == {"name": "p", "version": "2"}
    assert document["position"] == [{"block": "steps", "index": 0}]


def test_a_value_that_cannot_be_stored_is_refused_when_saving() -> None:
    with pytest.raises(TypeError, match="set cannot be stored"):
        snapshots.dumps(_snapshot(variables={"s": {1, 2}}))


# -- refusals ----------------------------------------------------------------------------


def test_a_newer_version_is_refused() -> None:
    document = json.loads(V1_FILE.read_text(encoding="utf-8"))
    document["version"] = snapshots.VERSION + 1
    with pytest.raises(SnapshotError, match=r"format version 3 is newer than this procctl "
                                            r"reads \(2\)"):
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


def _with_state(state: Any) -> str:
    """The v1 example as version 2, with `state` as its body frame's state."""
    document = json.loads(snapshots.dumps(snapshots.loads(V1_FILE.read_text("utf-8"))))
    document["position"][1]["state"] = state
    return json.dumps(document)


def _foreach_state() -> dict[str, Any]:
    return {"kind": "foreach", "items": ["A-1"], "index": 0, "results": [], "shadowed": {}}


def test_an_unknown_frame_state_kind_is_refused_naming_it() -> None:
    with pytest.raises(SnapshotError, match=r"position\[1\] \(block 'body'\): unknown "
                                            r"frame state kind 'forEach'"):
        snapshots.loads(_with_state({**_foreach_state(), "kind": "forEach"}))


def test_a_frame_state_without_a_kind_is_refused() -> None:
    state = _foreach_state()
    del state["kind"]
    with pytest.raises(SnapshotError, match="unknown frame state kind None"):
        snapshots.loads(_with_state(state))


@pytest.mark.parametrize("name", ["items", "index", "results", "shadowed"])
def test_a_frame_state_missing_a_field_is_refused_naming_it(name: str) -> None:
    state = _foreach_state()
    del state[name]
    with pytest.raises(SnapshotError, match=f"the foreach state is missing a field: '{name}'"):
        snapshots.loads(_with_state(state))


def test_a_frame_state_with_an_unknown_field_is_refused_naming_it() -> None:
    with pytest.raises(SnapshotError, match="the foreach state has an unknown field: 'idx'"):
        snapshots.loads(_with_state({**_foreach_state(), "idx": 0}))


@pytest.mark.parametrize("change", [{"index": "1"}, {"index": True}, {"items": "A-1"},
                                    {"shadowed": []}])
def test_a_frame_state_field_of_the_wrong_type_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(SnapshotError, match="the foreach state is not valid"):
        snapshots.loads(_with_state({**_foreach_state(), **change}))


def test_a_catch_state_with_a_bad_error_is_refused() -> None:
    state = {"kind": "catch", "error": {"step": "x"}, "shadowed": {}}
    with pytest.raises(SnapshotError, match="the catch state is not valid: 'message'"):
        snapshots.loads(_with_state(state))


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


# The position of docs/snapshot-format.md's version-1 example: a checkpoint in the catch
# of a scope in a while body, in an inclusive step's second branch, in a switch case.
V1_NESTED_POSITION: list[dict[str, Any]] = [
    {"block": "steps", "index": 0},
    {"block": "cases[0]", "index": 0},
    {"block": "branches[1]", "index": 0,
     "loop": {"selected": ["branches[0]", "branches[1]"], "results": {"a": "a"}}},
    {"block": "body", "index": 0, "loop": {"index": 0, "results": [], "shadowed": {}}},
    {"block": "catch", "index": 0,
     "loop": {"error": {"message": "boom 0", "step": "boom", "kind": "thrown",
                        "step_path": "steps[0].cases[0].do[0].branches[1].do[0].body[0].do[0]"},
              "shadowed": {}}},
]


def _v1(position: list[dict[str, Any]]) -> str:
    document = json.loads(V1_FILE.read_text(encoding="utf-8"))
    document["position"] = position
    return json.dumps(document)


def test_migration_1_tags_every_kind_of_version_1_frame_state() -> None:
    finally_frame = {"block": "finally", "index": 1,
                     "loop": {"value": {"$type": "decimal", "value": "2.50"}, "error": None}}
    loaded = snapshots.loads(_v1([*V1_NESTED_POSITION, finally_frame]))
    error = CaughtError("boom 0", "boom",
                        "steps[0].cases[0].do[0].branches[1].do[0].body[0].do[0]", "thrown")
    assert loaded.position == (
        Frame("steps", 0),
        Frame("cases[0]", 0),
        Frame("branches[1]", 0, InclusiveState(("branches[0]", "branches[1]"), {"a": "a"})),
        Frame("body", 0, WhileState(0, (), {})),
        Frame("catch", 0, CatchState(error, {})),
        Frame("finally", 1, FinallyState(Decimal("2.50"), None)),
    )


def test_migration_1_refuses_a_version_1_state_where_no_step_keeps_one() -> None:
    position = [{"block": "then", "index": 0, "loop": {"index": 0}}]
    with pytest.raises(SnapshotError, match="a frame state in block 'then'"):
        snapshots.loads(_v1(position))


def test_a_version_1_document_written_again_is_version_2() -> None:
    loaded = snapshots.loads(_v1(V1_NESTED_POSITION))
    document = json.loads(snapshots.dumps(loaded))
    assert document["version"] == 2
    assert [frame.get("state", {}).get("kind") for frame in document["position"]] == [
        None, None, "inclusive", "while", "catch"]
    assert "loop" not in json.dumps(document["position"])
