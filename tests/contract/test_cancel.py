"""The store's side of `procctl cancel` (store/cancelling.py), through StoreContract's
methods only: running or paused -> cancelled, the checkpoint discarded, held signals
refused, and a cancel racing a resume. Runs for every backend."""

from __future__ import annotations

import json

import pytest
from contract.backends import (
    Opener,
    checkpointed,
    deliver,
    join_as_agent,
    paused,
    running,
    wait_lease_out,
)
from contract.test_races import ROUNDS, race

from procctl.agent import decisions
from procctl.agent.cancelling import cancel_without_agent
from procctl.agent.engine.state import Cancellation
from procctl.agent.errors import Refused
from procctl.store import StoreContract
from procctl.store.clock import utc_now
from procctl.store.errors import Conflict, NotFound
from procctl.store.records import TERMINAL_STATUSES, SignalStatus, Status

CANCELLED = json.dumps({"kind": "cancelled", "message": "cancelled by cli:ada@host",
                        "by": "cli:ada@host", "reason": "not needed"})
LIVE = (Status.RUNNING, Status.PAUSED)


def test_cancelled_is_a_terminal_status() -> None:
    assert Status("cancelled") is Status.CANCELLED
    assert Status.CANCELLED in TERMINAL_STATUSES


def test_a_paused_instance_is_cancelled_and_its_checkpoint_discarded(
        store: StoreContract) -> None:
    paused(store, "i1", "c1")
    event = ("i1", utc_now(), "instance_cancelled", '{"by": "cli:ada@host"}', None, None)
    record = store.cancel_instance("i1", CANCELLED, from_statuses=LIVE, events=[event])
    assert record.status is Status.CANCELLED
    assert record.ended_at is not None and record.paused_at is None
    assert record.error_json is not None and json.loads(record.error_json)["reason"] == \
        "not needed"
    assert store.find_checkpoint("i1") is None
    assert store.paused_correlation_ids() == []
    assert [e.kind for e in store.events("i1")][-1] == "instance_cancelled"
    assert store.count_by_status() == {Status.CANCELLED: 1}
    assert [r.id for r in store.list_instances(status=Status.CANCELLED)] == ["i1"]


def test_a_running_instance_is_cancelled(store: StoreContract) -> None:
    checkpointed(store, "i1", "c1")
    store.cancel_instance("i1", CANCELLED, from_statuses=(Status.RUNNING,))
    assert store.get_instance("i1").status is Status.CANCELLED
    assert store.find_checkpoint("i1") is None


@pytest.mark.parametrize("ended", [Status.COMPLETED, Status.FAILED])
def test_an_ended_instance_is_not_cancelled(store: StoreContract, ended: Status) -> None:
    running(store, "i1")
    store.finish_instance("i1", ended)
    with pytest.raises(Conflict, match=f"instance i1 is {ended}, not running or paused"):
        store.cancel_instance("i1", CANCELLED, from_statuses=LIVE)
    assert store.get_instance("i1").status is ended


def test_a_cancelled_instance_is_not_cancelled_again(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    store.cancel_instance("i1", CANCELLED, from_statuses=LIVE)
    with pytest.raises(Conflict, match="is cancelled"):
        store.cancel_instance("i1", CANCELLED, from_statuses=LIVE,
                              events=[("i1", utc_now(), "instance_cancelled", "{}", None,
                                       None)])
    assert [e.kind for e in store.events("i1")].count("instance_cancelled") == 0


def test_an_unknown_instance_is_not_found(store: StoreContract) -> None:
    with pytest.raises(NotFound):
        store.cancel_instance("nope", CANCELLED, from_statuses=LIVE)


def test_the_paused_status_only_leaves_a_running_instance_alone(
        store: StoreContract) -> None:
    checkpointed(store, "i1", "c1")
    with pytest.raises(Conflict, match="is running, not paused"):
        store.cancel_instance("i1", CANCELLED, from_statuses=(Status.PAUSED,))
    assert store.get_checkpoint("i1").correlation_id == "c1"


def test_a_cancel_after_a_takeover_is_refused(store: StoreContract) -> None:
    running(store, "i1")
    read = store.get_instance("i1")
    with pytest.raises(Conflict, match="taken over"):
        store.cancel_instance("i1", CANCELLED, from_statuses=(Status.RUNNING,),
                              epoch=read.epoch + 1)
    store.cancel_instance("i1", CANCELLED, from_statuses=(Status.RUNNING,), epoch=read.epoch)
    assert store.get_instance("i1").status is Status.CANCELLED


def test_signals_held_for_it_are_rejected_with_the_reason(store: StoreContract) -> None:
    checkpointed(store, "i1", "gate", pausing=True)
    held = deliver(store, "gate", signal_id="early")
    assert held.outcome == SignalStatus.PENDING and held.signal.instance_id == "i1"
    store.cancel_instance("i1", CANCELLED, from_statuses=LIVE,
                          signal_reason="instance i1 was cancelled by cli:ada@host")
    [rejected] = store.list_signals((SignalStatus.REJECTED,))
    assert rejected.signal_id == "early"
    assert rejected.reason == "instance i1 was cancelled by cli:ada@host"
    assert store.list_signals((SignalStatus.PENDING,)) == []


def test_a_later_signal_finds_the_cancelled_instance_as_last_holder(
        store: StoreContract) -> None:
    paused(store, "i1", "c1")
    store.cancel_instance("i1", CANCELLED, from_statuses=LIVE)
    gone = store.resume_target("c1")
    assert gone.holder is None and gone.last is not None
    assert (gone.last.instance_id, gone.last.status) == ("i1", Status.CANCELLED)
    assert gone.last.error_json is not None
    assert json.loads(gone.last.error_json)["by"] == "cli:ada@host"


def test_active_children_are_the_running_and_paused_ones(store: StoreContract) -> None:
    running(store, "parent")
    for child, key in (("c1", "k1"), ("c2", "k2"), ("c3", "k3")):
        store.create_instance(child, "d" * 64, "contract", "1", "{}", "{}", "parent", key)
    store.finish_instance("c2", Status.COMPLETED)
    store.save_checkpoint("c3", "gate", "child-gate", "{}", expires_at=None)
    store.pause_instance("c3", commit_value_json=None, resume_at=None)
    assert [c.id for c in store.active_children("parent")] == ["c1", "c3"]
    assert store.active_children("c1") == []


def test_a_cancel_against_a_resume_one_wins(backend: Opener, store: StoreContract) -> None:
    for n in range(ROUNDS):
        instance, correlation = f"i{n}", f"c{n}"
        paused(store, instance, correlation)
        cancelled, resumed = race(
            backend,
            lambda s, i=instance: s.cancel_instance(i, CANCELLED,
                                                    from_statuses=(Status.PAUSED,)),
            lambda s, c=correlation: deliver(s, c, signal_id=f"sig-{c}"))
        record = store.get_instance(instance)
        if isinstance(cancelled, Conflict):
            assert resumed.outcome == SignalStatus.APPLIED, resumed
            assert record.status is Status.RUNNING
        else:
            assert not isinstance(cancelled, Exception), cancelled
            # refused with the cancellation once agent/decisions.py's gone_reason knows
            # the cancelled status; held pending (for nobody) before
            assert resumed.outcome == (SignalStatus.REJECTED if Status.CANCELLED in
                                       decisions.TERMINAL else SignalStatus.PENDING), resumed
            assert record.status is Status.CANCELLED
            assert store.find_checkpoint(instance) is None


def test_cancelling_without_an_agent_leaves_a_live_agents_instance_to_it(
        backend: Opener, store: StoreContract) -> None:
    """agent/cancelling.py over the store: on a shared store, a running instance whose
    agent's lease is current is that agent's to stop; once the lease ran out (nobody
    runs it) it is cancelled in the store. On SQLite, one agent per home: an instance
    left running when no agent runs is nobody's."""
    agent = join_as_agent(backend, "agent-a", lease=1.0)
    try:
        running(agent, "i1")
        asked = Cancellation("cli:ada@host", "stop")
        if store.shared:
            with pytest.raises(Refused, match=r"runs on agent agent-a \(contract-host\)"):
                cancel_without_agent(store, "i1", asked)
            assert store.get_instance("i1").status is Status.RUNNING
            wait_lease_out(store, "agent-a")
        done = cancel_without_agent(store, "i1", asked)
        assert done.record.status is Status.CANCELLED and done.finally_ran is False
    finally:
        agent.close()
