"""History events reach the store without a thread hand-off of their own
(agent/store_worker.py): with a real StoreWorker on a SQLite file, an event queued
before a transition is committed by that transition, queuing costs no store-thread
job, and events with no transition after them are written by the timer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from procctl.agent.store_worker import EVENT_DELAY, StoreWorker
from procctl.store import Store
from procctl.store.clock import utc_now


def kinds(worker: StoreWorker, instance_id: str) -> list[str]:
    return [event.kind for event in worker.store.events(instance_id)]


def test_queued_events_ride_with_the_next_transition_and_cost_no_job(tmp_path: Path) -> None:
    async def run() -> None:
        worker = StoreWorker(tmp_path / "procctl.db")
        await worker.open()
        store = worker.store
        await worker.call(store.put_definition, "sha", "p", "1", None, "source")
        await worker.call(store.create_instance, "i1", "sha", "p", "1", "{}", "{}")
        jobs = 0
        submit = worker._executor.submit

        def counting(*args: object, **kwargs: object) -> object:
            nonlocal jobs
            jobs += 1
            return submit(*args, **kwargs)  # type: ignore[arg-type]

        worker._executor.submit = counting  # type: ignore[method-assign]
        for n in range(100):
            worker.add_event_soon("i1", utc_now(), f"e{n}", "{}", None, None)
        assert jobs == 0  # no store-thread job per event (the timer may add one later)
        before = store.commits
        await worker.call(store.save_checkpoint, "i1", "cp", "c-1", "{}", expires_at=None)
        assert store.commits == before + 1  # the events came in the checkpoint's commit
        assert kinds(worker, "i1") == [f"e{n}" for n in range(100)]
        worker._executor.submit = submit  # type: ignore[method-assign]
        await worker.close()

    asyncio.run(run())


def test_events_without_a_transition_are_written_after_the_delay(tmp_path: Path) -> None:
    async def run() -> tuple[list[str], list[str], float]:
        worker = StoreWorker(tmp_path / "procctl.db")
        await worker.open()
        store = worker.store
        await worker.call(store.put_definition, "sha", "p", "1", None, "source")
        await worker.call(store.create_instance, "i1", "sha", "p", "1", "{}", "{}")
        queued = time.monotonic()
        worker.add_event_soon("i1", utc_now(), "step_started", "{}", "a", "a")
        await worker.call(store.get_instance, "i1")  # a read hands it over, writes nothing
        early = await worker.call(kinds, worker, "i1")
        deadline = queued + 5
        while not (late := await worker.call(kinds, worker, "i1")):
            assert time.monotonic() < deadline, "the timer did not write the event"
            await asyncio.sleep(0.01)
        waited = time.monotonic() - queued
        await worker.close()
        return early, late, waited

    early, late, waited = asyncio.run(run())
    assert early == [] and late == ["step_started"]
    assert EVENT_DELAY * 0.9 <= waited < EVENT_DELAY + 2


def test_the_last_events_are_written_at_close(tmp_path: Path) -> None:
    async def run() -> None:
        worker = StoreWorker(tmp_path / "procctl.db")
        await worker.open()
        await worker.call(worker.store.put_definition, "sha", "p", "1", None, "source")
        await worker.call(worker.store.create_instance, "i1", "sha", "p", "1", "{}", "{}")
        worker.add_event_soon("i1", utc_now(), "step_finished", "{}", "a", "a")
        await worker.close()

    asyncio.run(run())
    store = Store(tmp_path / "procctl.db")
    assert [e.kind for e in store.events("i1")] == ["step_finished"]
    store.close()
