"""Two connections to the same store racing (the agent, a command of the CLI, a purge):
exactly one of two competing transitions wins. Each race runs ROUNDS times, the two
threads released together by a barrier. Runs for every backend."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from contract.backends import Opener, checkpointed, deliver, paused

from procctl.store import StoreContract
from procctl.store.clock import utc_after
from procctl.store.errors import Conflict
from procctl.store.records import SignalStatus, Status

ROUNDS = 8
EXPIRED = json.dumps({"kind": "expired"})


def race(backend: Opener, first: Callable[[StoreContract], Any],
         second: Callable[[StoreContract], Any]) -> tuple[Any, Any]:
    """Run `first` and `second` at once, each on a connection of its own; return what
    each returned (or the exception it raised)."""
    stores = [backend(), backend()]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(index: int, action: Callable[[StoreContract], Any]) -> None:
        barrier.wait(timeout=10)
        try:
            results[index] = action(stores[index])
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    for store in stores:
        store.close()
    return results[0], results[1]


def test_a_delivery_against_a_pause_is_applied_once(backend: Opener,
                                                     store: StoreContract) -> None:
    for n in range(ROUNDS):
        instance, correlation = f"i{n}", f"c{n}"
        checkpointed(store, instance, correlation)
        paused_result, delivery = race(
            backend,
            lambda s, i=instance: s.pause_instance(i, commit_value_json=None, resume_at=None),
            lambda s, c=correlation, n=n: deliver(s, c, signal_id=f"s{n}", payload_json="1"))
        assert not isinstance(paused_result, Exception), paused_result
        assert not isinstance(delivery, Exception), delivery
        # Paused first: the delivery applies. Delivered first: held, and the pause
        # takes it. Either way the signal is applied exactly once and the instance runs on.
        assert (delivery.outcome, paused_result is not None) in (
            (SignalStatus.APPLIED, False), (SignalStatus.PENDING, True))
        record = store.get_instance(instance)
        assert record.status is Status.RUNNING
        assert store.get_checkpoint(instance).iteration == 1
        outcome = store.signal_outcome(f"s{n}")
        assert outcome is not None and outcome.status == SignalStatus.APPLIED
        assert store.list_signals((SignalStatus.PENDING,)) == []


def test_the_same_signal_id_at_once_is_applied_once(backend: Opener,
                                                     store: StoreContract) -> None:
    for n in range(ROUNDS):
        instance, correlation = f"i{n}", f"c{n}"
        paused(store, instance, correlation)
        results = race(backend,
                       lambda s, c=correlation, n=n: deliver(s, c, signal_id=f"s{n}"),
                       lambda s, c=correlation, n=n: deliver(s, c, signal_id=f"s{n}"))
        outcomes = sorted(str(r.outcome) for r in results)
        assert outcomes == [SignalStatus.APPLIED, SignalStatus.DUPLICATE], results
        assert store.get_checkpoint(instance).iteration == 1
        assert store.get_instance(instance).status is Status.RUNNING


def test_an_expiry_against_a_resume_one_wins(backend: Opener, store: StoreContract) -> None:
    for n in range(ROUNDS):
        instance, correlation = f"i{n}", f"c{n}"
        paused(store, instance, correlation, expires_at=utc_after(3600))
        later = utc_after(7200)
        expired, resumed = race(
            backend,
            lambda s, i=instance, t=later: s.expire_instance(i, EXPIRED, t),
            lambda s, i=instance: s.take_resume(i, Status.PAUSED))
        record = store.get_instance(instance)
        if expired is True:
            assert isinstance(resumed, Conflict), resumed
            assert record.status is Status.FAILED
            assert store.find_checkpoint(instance) is None
        else:
            assert expired is False, expired
            assert not isinstance(resumed, Exception), resumed
            assert record.status is Status.RUNNING
            assert store.get_checkpoint(instance).iteration == 1
