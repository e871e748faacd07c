"""This agent's place among the agents that share its store: its ID, its lease, and
the running instances it takes over from agents that are gone.

The ID is kept in the home (`agent.id`: the host's name and a random suffix), so an
agent started again in the same home is the same agent: at start it takes back what
its last run left running. The lease is renewed every third of its length on the
store's clock; a renewal the store refuses (the lease ran out: the agent was frozen, or
could not reach the store) means other agents may own its instances now, so it stops
without writing more (the store fences it anyway). On SQLite the home's lock keeps one
agent per store and the lease only shows in `procctl agents`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

from procctl.agent import VERSION
from procctl.agent.atomic import write_bytes_atomically
from procctl.agent.durations import parse_duration
from procctl.agent.homefiles import read_private
from procctl.agent.paths import HomePaths
from procctl.agent.store_worker import StoreWorker
from procctl.store import clock
from procctl.store.errors import Fenced, StoreError

log = logging.getLogger("procctl.agent")

#: instances claimed per tick (the rest waits for the next tick)
CLAIM_BATCH = 100
#: a host clock this far (seconds) from the store's is logged
CLOCK_NOTE = 0.5


def agent_id(paths: HomePaths) -> str:
    """The home's agent ID, made on first use: `<host>-<6 hex digits>`."""
    path = paths.home / "agent.id"
    known = read_private(path)
    if known is not None and known.strip():
        return known.strip()
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    made = f"{host[:40] or 'host'}-{secrets.token_hex(3)}"
    write_bytes_atomically(path, (made + "\n").encode())
    return made


class Membership:
    def __init__(self, paths: HomePaths, settings: dict[str, Any], worker: StoreWorker,
                 on_lost: Callable[[StoreError], None]) -> None:
        self.paths = paths
        self.worker = worker
        self.pool = str(settings.get("pool") or "default")
        self.lease_seconds = parse_duration(settings.get("lease") or "30s")
        self.agent_id = agent_id(paths)
        self.lease_until: str | None = None
        #: seconds this host's clock is behind the store's (0 on SQLite)
        self.clock_offset = 0.0
        self._on_lost = on_lost

    async def join(self) -> None:
        """Register with the store (a new incarnation of this agent)."""
        store = self.worker.store
        await self.worker.call(
            store.register_agent, self.agent_id, host=socket.gethostname(), pool=self.pool,
            home=str(self.paths.home), pid=os.getpid(), version=VERSION,
            lease_seconds=self.lease_seconds)
        self.lease_until = await self.worker.call(store.renew_lease, self.lease_seconds)
        await self._read_store_clock()
        log.info("agent joined the store", extra={
            "agent_id": self.agent_id, "pool": self.pool, "lease_seconds": self.lease_seconds,
            "store": self.worker.store.location})

    async def run(self) -> None:
        """Renew the lease every third of its length until cancelled; a refused
        renewal ends the agent (`on_lost`). A renewal that fails otherwise (the store
        unreachable) is tried again at the next turn: the lease may still hold."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                self.lease_until = await self.worker.call(self.worker.store.renew_lease,
                                                          self.lease_seconds)
            except Fenced as exc:
                self._on_lost(exc)
                return
            except StoreError as exc:
                log.warning("lease not renewed: %s", exc)
                continue
            await self._read_store_clock()

    async def _read_store_clock(self) -> None:
        """On a shared store, this agent's timestamps follow the store's clock."""
        if not self.worker.store.shared:
            return
        try:
            offset = await self.worker.call(self.worker.store.clock_offset)
        except StoreError as exc:
            log.warning("the store's clock not read: %s", exc)
            return
        if abs(offset - self.clock_offset) > CLOCK_NOTE and abs(offset) > CLOCK_NOTE:
            log.info("host clock differs from the store's", extra={
                "seconds": round(offset, 3)})
        self.clock_offset = offset
        clock.set_offset(offset)

    async def claim(self, *, at_start: bool = False) -> list[str]:
        """Running instances left by agents that are gone (at start: also this
        agent's own from its last run), now this agent's, to run on."""
        return await self.worker.call(self.worker.store.claim_orphans, pool=self.pool,
                                      limit=CLAIM_BATCH if not at_start else 1 << 30,
                                      at_start=at_start)

    async def leave(self) -> None:
        """A clean stop: the lease ends now, so peers take over at once."""
        try:  # once: a store that does not answer lets the lease run out instead
            await self.worker.call_once(self.worker.store.release_agent)
        except StoreError as exc:
            log.warning("lease not released (it runs out by itself): %s", exc)

    def to_json(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "pool": self.pool,
                "lease_seconds": self.lease_seconds, "lease_until": self.lease_until,
                "clock_offset_seconds": self.clock_offset}
