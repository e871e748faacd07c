"""The agent's clock: scheduled resumes, expiry, pending signals, periodic scans.

A tick that fails is logged and tried again at the next tick; failures in a row make
the agent `degraded` in `procctl agent status` until a tick succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time

from procctl.agent.durations import parse_duration
from procctl.agent.expiry import Expiry, find_expired
from procctl.agent.health import DEGRADED_AFTER, Health
from procctl.agent.intake import SignalDesk
from procctl.agent.lifecycle_runs import Lifecycle
from procctl.agent.store_worker import StoreWorker
from procctl.store.clock import utc_now

log = logging.getLogger("procctl.scheduler")

TICK_SECONDS = 0.25


class Scheduler:
    def __init__(self, lifecycle: Lifecycle, desk: SignalDesk, worker: StoreWorker,
                 settings: dict[str, object], health: Health | None = None) -> None:
        self.lifecycle = lifecycle
        self.health = health or Health()
        self.desk = desk
        self.worker = worker
        self.scan_interval = parse_duration(settings["signal_scan_interval"])
        self._last_scan = 0.0

    async def run(self) -> None:
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
        for instance_id in await self.worker.call(store.due_resumes, utc_now()):
            await self.lifecycle.resume_scheduled(instance_id)
        await self.expire()
        await self.worker.call(store.expire_pending_signals, utc_now())
        if time.monotonic() - self._last_scan >= self.scan_interval:
            self._last_scan = time.monotonic()
            self.desk.scan()

    async def expire(self, *, dry_run: bool = False) -> list[Expiry]:
        """Apply the TTL policies now; returns what was (or would be) done."""
        found = await self.worker.call(find_expired, self.worker.store)
        if dry_run:
            return found
        return [expiry for expiry in found if await self.lifecycle.expire(expiry)]
