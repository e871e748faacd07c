"""Snapshots hold typed frame states, taken without deep copies: what runs after a
checkpoint (the loop going on, variables set again, results added, branches and scope
blocks ending) never changes a snapshot already taken. Real engine, real store."""

from __future__ import annotations

from typing import Any

import pytest
from engine.harness import Engine

from procctl.agent import snapshot as snapshots
from procctl.agent.engine.frames import (
    FRAME_STATES,
    CatchState,
    FinallyState,
    ForeachState,
    InclusiveState,
    WhileState,
)
from procctl.agent.snapshot import Snapshot

# A checkpoint (continue = true) in every block that keeps a frame state; after each,
# steps set the variables again and add results.
EVERY_STATE = """
[process]
name = "frames"

[[steps]]
id = "init"
kind = "set"
values = { total = 0, seen = [], note = "start" }

[[steps]]
id = "each"
kind = "foreach"
items = "[{'n': 1}, {'n': 2}, {'n': 3}]"
as = "item"

    [[steps.body]]
    id = "in-foreach"
    kind = "checkpoint"
    continue = true

    [[steps.body]]
    id = "add"
    kind = "set"
    values = { total = "{{ total + item.n }}", seen = "{{ seen + [item.n] }}" }

    [[steps.body]]
    id = "said"
    task = "log"
    with = { message = "n={{ item.n }} total={{ total }}" }

[[steps]]
id = "again"
kind = "while"
condition = "i < 2"
index_as = "i"
max_iterations = 5

    [[steps.body]]
    id = "in-while"
    kind = "checkpoint"
    continue = true

    [[steps.body]]
    id = "bump"
    kind = "set"
    values = { total = "{{ total * 2 }}" }

    [[steps.body]]
    id = "said-while"
    task = "log"
    with = { message = "{{ total }}" }

[[steps]]
id = "both"
kind = "inclusive"

    [[steps.branches]]
    name = "first"
    when = "total > 0"

        [[steps.branches.do]]
        id = "in-first"
        kind = "checkpoint"
        continue = true

        [[steps.branches.do]]
        id = "first-says"
        task = "log"
        with = { message = "first" }

    [[steps.branches]]
    name = "second"
    when = "true"

        [[steps.branches.do]]
        id = "in-second"
        kind = "checkpoint"
        continue = true

        [[steps.branches.do]]
        id = "second-says"
        task = "log"
        with = { message = "second" }

[[steps]]
id = "guarded"
kind = "scope"

    [[steps.do]]
    id = "boom"
    kind = "throw"
    message = "boom {{ total }}"

    [[steps.catch]]
    id = "in-catch"
    kind = "checkpoint"
    continue = true

    [[steps.catch]]
    id = "handled"
    kind = "set"
    values = { note = "{{ error.message }}" }

    [[steps.catch]]
    id = "catch-says"
    task = "log"
    with = { message = "caught" }

    [[steps.finally]]
    id = "in-finally"
    kind = "checkpoint"
    continue = true

    [[steps.finally]]
    id = "cleanup"
    kind = "set"
    values = { note = "cleaned" }

[[steps]]
id = "done"
kind = "return"
value = { total = "{{ total }}", seen = "{{ seen }}", note = "{{ note }}" }
"""


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Snapshot, str]]:
    """Every snapshot the agent commits, with the text committed for it."""
    committed: list[tuple[Snapshot, str]] = []
    write = snapshots.dumps

    def recording(snapshot: Snapshot) -> str:
        text = write(snapshot)
        committed.append((snapshot, text))
        return text

    monkeypatch.setattr(snapshots, "dumps", recording)
    return committed


def _states(snapshot: Snapshot) -> list[Any]:
    return [frame.state for frame in snapshot.position if frame.state is not None]


def test_what_runs_after_a_checkpoint_never_changes_its_snapshot(
        engine: Engine, taken: list[tuple[Snapshot, str]]) -> None:
    summary = engine.run(EVERY_STATE)
    assert summary["status"] == "completed", summary
    assert summary["result"]["total"] == 24 and summary["result"]["seen"] == [1, 2, 3]
    assert [s.checkpoint_id for s, _ in taken] == [
        "in-foreach", "in-foreach", "in-foreach", "in-while", "in-while", "in-first",
        "in-second", "in-catch", "in-finally"]
    # Each snapshot object, long after it was committed, is still what was committed.
    for snapshot, text in taken:
        assert snapshots.loads(text) == snapshot, snapshot.checkpoint_id
    # and it says what held at its checkpoint, not what came after
    foreach = [_states(s)[0] for s, _ in taken[:3]]
    assert all(isinstance(state, ForeachState) for state in foreach)
    assert [state.index for state in foreach] == [0, 1, 2]
    assert [len(state.results) for state in foreach] == [0, 1, 2]
    assert foreach[2].results == ("n=1 total=1", "n=2 total=3")
    assert [s.variables["total"] for s, _ in taken[:3]] == [0, 1, 3]
    assert [s.variables["seen"] for s, _ in taken[:3]] == [[], [1], [1, 2]]
    whiles = [_states(s)[0] for s, _ in taken[3:5]]
    assert whiles == [WhileState(0, (), {}), WhileState(1, (12,), {})]
    first, second = (_states(s)[0] for s, _ in taken[5:7])
    assert first == InclusiveState(("branches[0]", "branches[1]"), {})
    assert second == InclusiveState(("branches[0]", "branches[1]"), {"first": "first"})
    catch, = _states(taken[7][0])
    assert isinstance(catch, CatchState) and catch.error.message == "boom 24"
    assert taken[7][0].variables["note"] == "start"
    final, = _states(taken[8][0])
    assert isinstance(final, FinallyState) and final.error is None
    assert final.value == "caught"
    kinds = {type(state).TAG for s, _ in taken for state in _states(s)}
    assert kinds == set(FRAME_STATES)


def test_a_snapshot_taken_in_a_loop_resumes_with_its_own_state(engine: Engine) -> None:
    """A pause in the second iteration resumes there, with the first iteration's value
    kept from the frame (not from the loop as it went on in memory)."""
    definition = """
[process]
name = "loop-pause"

[[steps]]
id = "each"
kind = "foreach"
items = "['a', 'b']"
as = "item"

    [[steps.body]]
    id = "gate"
    kind = "checkpoint"
    correlation_id = "gate-{{ item }}"

    [[steps.body]]
    id = "after"
    task = "log"
    with = { message = "{{ item }}={{ results['gate'].payload }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['each'] }}"
"""
    assert engine.run(definition)["status"] == "paused"
    assert engine.resume("gate-a", 1)["instance"]["status"] == "paused"
    finished = engine.resume("gate-b", 2)["instance"]
    assert finished["status"] == "completed"
    assert finished["result"] == ["a=1", "b=2"]
