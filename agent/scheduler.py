"""The agent's clock: scheduled resumes, expiry, pending signals, periodic scans, the
`retention` purge (agent/retention.py), and the planner's statistics.

A tick that fails is logged and tried again at the next tick; failures in a row make
the agent `degraded` in `procctl agent status` until a tick succeeds. A tick with nothing
due costs three index probes (store/paused.py), whatever the number of paused
instances; what fell due at once is taken a batch per tick (expiries: one transaction
of about BATCH_SECONDS of store work; scheduled resumes: TICK_BATCH), so no tick holds
the store thread long.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from procctl.agent.durations import parse_duration
from procctl.agent.expiry import PURGE_BATCH, Expiry, decide, fail_expired_batch, find_expired
from procctl.agent.health import DEGRADED_AFTER, Health
from procctl.agent.intake import SignalDesk
from procctl.agent.lifecycle_runs import Lifecycle
from procctl.agent.membership import Membership
from procctl.agent.retention import RetentionClock
from procctl.agent.store_worker import StoreWorker
from procctl.store.clock import utc_now

log = logging.getLogger("procctl.scheduler")

TICK_SECONDS = 0.25
#: how often, at most, a shared store is asked for instances whose agent is gone (at
#: least four times a lease: the takeover comes within about one lease)
CLAIM_SECONDS = 1.0
#: how often the planner's statistics are refreshed (PRAGMA optimize: store/paused.py)
OPTIMIZE_SECONDS = 3600.0
#: how long one batch of expiries should hold the store thread: every other store call
#: (a resume makes a few in a row) waits behind it
BATCH_SECONDS = 0.08
MIN_BATCH = 10
#: a purge pauses this share of each batch's time before the next batch
PURGE_PAUSE = 0.25


@dataclass
class BatchSize:
    """Expiries per transaction, kept near BATCH_SECONDS of store work: what one costs
    depends on the disk and the store's size (at a million paused instances on a busy
    disk, 0.3 to 0.7 ms: ten random index pages written), so it is measured."""

    size: int = 100

    def took(self, count: int, seconds: float) -> None:
        if count <= 0 or seconds <= 0:
            return
        fits = BATCH_SECONDS * count / seconds
        self.size = max(MIN_BATCH, min(PURGE_BATCH, int((self.size + fits) / 2)))


class Scheduler:
    def __init__(self, lifecycle: Lifecycle, desk: SignalDesk, worker: StoreWorker,
                 settings: dict[str, object], health: Health | None = None,
                 membership: Membership | None = None) -> None:
        self.lifecycle = lifecycle
        #: claims what agents that are gone left running (a shared store only)
        self.membership = membership
        self._last_claim = 0.0
        self.claim_interval = (CLAIM_SECONDS if membership is None
                               else min(CLAIM_SECONDS, membership.lease_seconds / 4))
        self.health = health or Health()
        self.desk = desk
        self.worker = worker
        self.scan_interval = parse_duration(settings["signal_scan_interval"])
        self._last_scan = 0.0
        self._last_optimize = 0.0
        self.batch = BatchSize()
        #: purges running: the clock leaves expiries to them meanwhile
        self._purging = 0
        #: the `retention` setting: finished instances purged a batch per tick
        self.retention = RetentionClock.from_settings(worker, settings)

    async def run(self) -> None:
        await self.optimize()
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the clock going whatever one tick met
                self._failed(exc)
            else:
                ended = self.health.succeeded("scheduler")
                if ended is not None:
                    log.warning("scheduler works again after %d failed ticks", ended.count)
            await asyncio.sleep(TICK_SECONDS)

    def _failed(self, error: Exception) -> None:
        """Log the first failures in a row with their traceback; from then on one line
        a minute, not four a second."""
        failure = self.health.failed("scheduler", error)
        if failure.count <= DEGRADED_AFTER:
            log.exception("scheduler tick failed (%d in a row)", failure.count)
        elif failure.count % int(60 / TICK_SECONDS) == 0:
            log.error("scheduler tick still failing (%d in a row since %s): %s",
                      failure.count, failure.since, failure.error)

    async def tick(self) -> None:
        store = self.worker.store
        if (self.membership is not None and store.shared
                and time.monotonic() - self._last_claim >= self.claim_interval):
            self._last_claim = time.monotonic()
            for instance_id in await self.membership.claim():
                log.warning("taking over an instance whose agent is gone",
                            extra={"instance": instance_id})
                await self.lifecycle.recover(instance_id)
        for instance_id in await self.worker.call(store.due_resumes, utc_now()):
            await self.lifecycle.resume_scheduled(instance_id)
        await self.expire()
        await self.worker.call(store.expire_pending_signals, utc_now())
        if time.monotonic() - self._last_scan >= self.scan_interval:
            self._last_scan = time.monotonic()
            self.desk.scan()
        await self.retention.step()
        if time.monotonic() - self._last_optimize >= OPTIMIZE_SECONDS:
            await self.optimize()

    async def optimize(self) -> None:
        """Refresh the planner's statistics (ANALYZE a store that has none: a few
        milliseconds within analysis_limit). A failure is logged, not fatal: the
        queries that matter do not depend on statistics."""
        self._last_optimize = time.monotonic()
        try:
            started = time.perf_counter()
            done = await self.worker.call(self.worker.store.optimize)
            log.info("store statistics refreshed", extra={
                "how": done, "seconds": round(time.perf_counter() - started, 3)})
        except Exception as exc:  # the next hour tries again
            log.warning("store statistics not refreshed: %s", exc)

    async def expire(self, now: str | None = None) -> list[Expiry]:
        """Apply the TTL policies of one batch of what is past its TTL at `now`
        (default: now; the rest waits for the next tick, or for the purge that is
        running); returns what was done."""
        if self._purging:
            return []
        found = await self.worker.call(find_expired, self.worker.store, limit=self.batch.size,
                                       now=now)
        return await self._timed_apply(found, now)

    async def _timed_apply(self, found: Sequence[Expiry],
                           now: str | None = None) -> list[Expiry]:
        started = time.perf_counter()
        done = await self.apply(found, now)
        self.batch.took(len(found), time.perf_counter() - started)
        return done

    async def apply(self, found: Sequence[Expiry], now: str | None = None) -> list[Expiry]:
        """Apply TTL policies: the failures of a batch in one transaction (each
        instance's followers told, a called child's parent woken), the resumes one by
        one. Returns those applied, in the order found."""
        store = self.worker.store
        failing = [expiry for expiry in found if expiry.action == "failed"]
        failed = (await self.worker.call(fail_expired_batch, store, failing, now)
                  if failing else [])
        for expiry in failed:
            self.lifecycle.manager.publish(expiry.instance_id, {"kind": "instance_settled"})
            if expiry.parent_id is not None:  # an expired child fails its parent's call
                await self.lifecycle.manager.wake_parent(
                    await self.worker.call(store.get_instance, expiry.instance_id))
        applied = {expiry.instance_id for expiry in failed}
        for expiry in found:
            if expiry.action == "resume" and await self.lifecycle.resume_expired(expiry):
                applied.add(expiry.instance_id)
        return [expiry for expiry in found if expiry.instance_id in applied]

    async def purge(self, *, dry_run: bool = False) -> AsyncGenerator[list[Expiry], None]:
        """Everything past its TTL now, a batch (one short transaction: BatchSize) at
        a time, each read from the expiry index where the last ended: yields what each
        batch did (or, `dry_run`, would do). Other store calls run between the
        batches; what expires meanwhile is left to the clock."""
        store, now = self.worker.store, utc_now()
        after: tuple[str, str] | None = None
        self._purging += 1
        try:
            while True:
                size = self.batch.size
                rows = await self.worker.call(store.expired_page, now, after=after, limit=size)
                if not rows:
                    return
                after = rows[-1].key
                found = [decide(row) for row in rows]
                if dry_run:
                    yield found
                else:
                    started = time.perf_counter()
                    yield await self._timed_apply(found)
                    # A pause as long as half the batch: the store calls that queued
                    # behind it (a resume makes several in a row) run before the next.
                    await asyncio.sleep((time.perf_counter() - started) * PURGE_PAUSE)
                if len(rows) < size:
                    return
        finally:
            self._purging -= 1
