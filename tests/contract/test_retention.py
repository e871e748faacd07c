"""The clean-up part of the store contract (store/retention.py), on every backend: which
finished instances a purge removes, with what, and what it never touches; clearing old
signal records."""

from __future__ import annotations

import json

import pytest
from contract.backends import checkpointed, deliver, paused, running

from procctl.store import StoreContract
from procctl.store.clock import utc_after, utc_now
from procctl.store.errors import NotFound
from procctl.store.records import SignalStatus, Status

ERROR = json.dumps({"kind": "task_failed", "message": "boom"})
#: a cut after everything a test does: every finished instance ended before it
LATER = 3600.0


def every_finished(store: StoreContract, before: str, limit: int = 500) -> list[str]:
    """Every page of finished instances, read as a purge reads them."""
    found: list[str] = []
    page = store.finished_page(before, limit=limit)
    while page:
        found.extend(row.instance_id for row in page)
        page = store.finished_page(before, after=page[-1].key, limit=limit)
    return found


def completed(store: StoreContract, instance_id: str) -> None:
    running(store, instance_id)
    store.add_event(instance_id, "step_finished", "{}", step_id="s")
    store.finish_instance(instance_id, Status.COMPLETED, result_json="{}")


def test_a_purge_removes_finished_instances_with_their_history_checkpoints_and_signals(
        store: StoreContract) -> None:
    completed(store, "done")
    checkpointed(store, "failed", "retry-me")  # failed, keeps its checkpoint (retryable)
    store.finish_instance("failed", Status.FAILED, error_json=ERROR)
    paused(store, "resumed", "approve")
    assert deliver(store, "approve").outcome == SignalStatus.APPLIED
    store.finish_instance("resumed", Status.COMPLETED, result_json="{}")
    running(store, "cancelled")
    store.cancel_instance("cancelled", ERROR, from_statuses=(Status.RUNNING,))
    before = utc_after(LATER)

    rows = store.finished_page(before)
    assert {row.instance_id: row.status for row in rows} == {
        "done": "completed", "resumed": "completed", "failed": "failed",
        "cancelled": "cancelled"}
    purged = store.purge_finished([row.instance_id for row in rows], before)

    assert sorted(purged.instance_ids) == ["cancelled", "done", "failed", "resumed"]
    assert purged.checkpoints == 1 and purged.signals == 1 and purged.events >= 1
    for instance_id in purged.instance_ids:
        with pytest.raises(NotFound):
            store.get_instance(instance_id)
        assert store.events(instance_id) == []
        assert store.find_checkpoint(instance_id) is None
    assert store.checkpoint_by_correlation("retry-me") is None
    assert store.list_signals((SignalStatus.APPLIED,)) == []
    assert store.finished_page(before) == []


def test_running_and_paused_instances_are_never_purged(store: StoreContract) -> None:
    running(store, "runs")
    paused(store, "waits", "w")
    before = utc_after(LATER)
    assert store.finished_page(before) == []
    assert store.purge_finished(["runs", "waits"], before).instance_ids == ()
    assert store.get_instance("runs").status is Status.RUNNING
    assert store.get_instance("waits").status is Status.PAUSED
    assert store.get_checkpoint("waits").correlation_id == "w"


def test_only_what_ended_before_the_cut_is_purged(store: StoreContract) -> None:
    completed(store, "old")
    cut = utc_now()
    completed(store, "new")
    assert every_finished(store, cut) == ["old"]
    assert store.purge_finished(["old", "new"], cut).instance_ids == ("old",)
    assert store.get_instance("new").status is Status.COMPLETED


def test_a_failed_instance_retried_after_it_was_read_is_not_purged(
        store: StoreContract) -> None:
    checkpointed(store, "f", "gate")
    store.finish_instance("f", Status.FAILED, error_json=ERROR)
    before = utc_after(LATER)
    page = store.finished_page(before)
    assert [row.instance_id for row in page] == ["f"]
    store.take_resume("f", Status.FAILED)  # a retry between the read and the purge
    assert store.purge_finished(["f"], before).instance_ids == ()
    assert store.get_instance("f").status is Status.RUNNING
    assert store.get_checkpoint("f").correlation_id == "gate"


def test_an_instance_whose_parent_or_child_is_active_is_kept(store: StoreContract) -> None:
    paused(store, "parent", "call:child")
    store.create_instance("child", "d" * 64, "contract", "1", "{}", "{}", "parent", "k")
    store.finish_instance("child", Status.COMPLETED, result_json="{}")
    completed(store, "other-parent")
    store.create_instance("runner", "d" * 64, "contract", "1", "{}", "{}", "other-parent",
                          "k")
    before = utc_after(LATER)
    assert every_finished(store, before) == []
    assert store.purge_finished(["child", "other-parent"], before).instance_ids == ()
    store.finish_instance("runner", Status.COMPLETED, result_json="{}")
    assert sorted(every_finished(store, before)) == ["other-parent", "runner"]


def test_pages_cover_every_finished_instance_once_even_when_many_started_together(
        store: StoreContract, monkeypatch: pytest.MonkeyPatch) -> None:
    import procctl.store.instances as instances

    for number in range(7):
        completed(store, f"apart-{number}")
    moment = utc_now()
    monkeypatch.setattr(instances, "utc_now", lambda: moment)
    for number in range(5):  # five started at the same microsecond
        completed(store, f"together-{number}")
    monkeypatch.undo()
    for number in range(3):
        running(store, f"failing-{number}")
        store.finish_instance(f"failing-{number}", Status.FAILED, error_json=ERROR)
    before = utc_after(LATER)
    for limit in (1, 2, 3, 6, 100):
        found = every_finished(store, before, limit)
        assert sorted(found) == sorted({*found}), (limit, found)
        assert len(found) == 15, (limit, found)


def test_old_rejected_unmatched_and_duplicate_signals_are_cleared(
        store: StoreContract) -> None:
    for number in range(4):
        store.record_rejected_signal(f"file:bad-{number}.json", "not JSON")
    held = deliver(store, "nobody-yet", hold_seconds=LATER)
    assert held.outcome == SignalStatus.PENDING
    assert store.count_old_signals(utc_now()) == 4
    assert store.clear_old_signals(utc_after(-LATER)) == 0  # none is that old
    assert store.clear_old_signals(utc_now(), limit=3) == 3
    assert store.clear_old_signals(utc_now(), limit=3) == 1
    assert store.count_old_signals(utc_after(LATER)) == 0
    assert [s.status for s in store.list_signals()] == [SignalStatus.PENDING]
