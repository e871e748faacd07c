"""Several real agents on one PostgreSQL store, for the multi-agent tests.

A `Fleet` starts N `procctl agent run` processes in the foreground (so the test knows
each PID for SIGKILL / SIGSTOP), each with its own home under the test's directory (own
lock, socket, signals directory, agent ID), all with PROCCTL_STORE_URL set to one
database, and a short lease written with `procctl config set lease` before the start.
An agent counts as started once it answers `agent status` with its PID and state
"ready". The first agent of a fleet starts alone, as it creates the schema
(`start(together=True)` starts all at once). Each agent's output goes to a file of the
test; `close()` kills whatever still runs (also when the test failed) and `logs()`
gathers what they wrote.

    with Fleet(tmp_path, pg_url) as fleet:
        a, b = fleet.start(2)
        a.procctl.ok("run", definition, "--json")
        a.kill()
        store = fleet.store()  # closed by fleet.close() if the test does not
        assert store.get_instance(instance_id).status == "completed"
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from helpers import PROCCTL, Procctl, wait_for

from procctl.agent.client import AgentClient
from procctl.agent.paths import HomePaths
from procctl.store import StoreContract, open_store

DEFAULT_LEASE = "2s"
READY_TIMEOUT = 30.0


class FleetAgent:
    """One agent of the fleet: its home, its `procctl`, its process."""

    def __init__(self, fleet: Fleet, name: str, home: Path, url: str) -> None:
        self.fleet = fleet
        self.name = name
        self.home = home
        self.procctl = Procctl(home)
        self.procctl.env["PROCCTL_STORE_URL"] = url
        self.output = fleet.root / f"{name}.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0  # how many times this agent was started
        #: what `agent status` answered when it was last found ready
        self.ready_status: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<FleetAgent {self.name} pid={self.pid} alive={self.alive}>"

    # -- facts ---------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"agent {self.name} was never started"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def agent_id(self) -> str:
        """The ID the agent keeps in its home (written at its first start)."""
        return (self.home / "agent.id").read_text().strip()

    @property
    def signals_dir(self) -> Path:
        """Where this agent reads signal files (as its status said when it was ready)."""
        return Path((self.ready_status or self.status())["signals_dir"])

    def status(self) -> dict[str, Any]:
        """`procctl agent status --json` of this home (the agent must answer)."""
        data: dict[str, Any] = self.procctl.ok("agent", "status", "--json").json()
        return data

    # -- life cycle ----------------------------------------------------------------

    def configure(self, *settings: tuple[str, str]) -> None:
        """`procctl config set` each (name, value) in this home (before a start)."""
        for name, value in settings:
            self.procctl.ok("config", "set", name, value)

    def spawn(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `procctl agent run` without waiting for it (see `start`)."""
        assert not self.alive, f"agent {self.name} already runs (pid {self.pid})"
        self.runs += 1
        with open(self.output, "ab") as out:
            out.write(f"\n=== {self.name}: run {self.runs} ===\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [PROCCTL, "agent", "run"], env={**self.procctl.env, **(env or {})},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        return self.proc

    def start(self, env: dict[str, str] | None = None,
              timeout: float = READY_TIMEOUT) -> FleetAgent:
        self.spawn(env)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Until the agent answers `agent status` (asked over its socket from this
        process, which is cheaper than a new `procctl` each poll) with this process's
        PID and state "ready"; fails at once if the process exits first."""

        def ready() -> dict[str, Any] | None:
            if not self.alive:
                raise AssertionError(f"agent {self.name} exited with {self.returncode} "
                                     f"before it was ready:\n{self.log()}")
            data: dict[str, Any] | None = self.client.status(timeout=5)
            if data and data.get("pid") == self.pid and data.get("state") == "ready":
                return data
            return None

        status: dict[str, Any] = wait_for(ready, timeout=timeout, interval=0.05,
                                          message=f"agent {self.name} to be ready")
        self.ready_status = status
        return status

    @property
    def client(self) -> AgentClient:
        """The agent's socket protocol, for requests no `procctl` command makes."""
        return AgentClient(HomePaths(self.home))

    def kill(self) -> None:
        """SIGKILL (a thawed process first, so it dies now), and reap it."""
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def freeze(self) -> None:
        """SIGSTOP: the process stays, does nothing, renews no lease."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self, timeout: float = 60) -> int:
        """A clean stop through `procctl agent stop`; the agent's exit code."""
        assert self.proc is not None, f"agent {self.name} was never started"
        if self.alive:
            self.procctl("agent", "stop", timeout=timeout)
        return self.wait_exit(timeout)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM (what systemd sends); the agent's exit code."""
        if self.alive:
            os.kill(self.pid, signal.SIGTERM)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc is not None, f"agent {self.name} was never started"
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"agent {self.name} (pid {self.pid}) still runs after "
                                 f"{timeout}s:\n{self.log()}") from None

    def restart(self, env: dict[str, str] | None = None) -> FleetAgent:
        """Stop cleanly if it runs (reap it if it was killed), then start again."""
        if self.alive:
            self.stop()
        elif self.proc is not None:
            self.proc.wait(timeout=30)
        return self.start(env)

    # -- what it wrote -------------------------------------------------------------

    def log(self, tail: int = 8000) -> str:
        """The agent's output (every run) and the end of its home's agent.log."""
        parts = []
        for path in (self.output, self.home / "agent.log"):
            with contextlib.suppress(OSError):
                parts.append(f"--{path.name}--\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts) or "(no output)"

    def close(self) -> None:
        """Kill it if it still runs (thawed first: a stopped process takes SIGKILL too,
        but a SIGCONT makes sure nothing waits on it)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)


class Fleet:
    """N agents sharing the PostgreSQL store at `url`; homes and outputs under `root`."""

    def __init__(self, root: Path, url: str, *, lease: str = DEFAULT_LEASE) -> None:
        self.root = root
        self.url = url
        self.lease = lease
        self.agents: list[FleetAgent] = []
        self._stores: list[StoreContract] = []
        root.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def __getitem__(self, index: int) -> FleetAgent:
        return self.agents[index]

    def __iter__(self) -> Iterator[FleetAgent]:
        return iter(self.agents)

    def __len__(self) -> int:
        return len(self.agents)

    def add(self, name: str | None = None, *, lease: str | None = None,
            settings: Sequence[tuple[str, str]] = ()) -> FleetAgent:
        """A new home, configured (lease, then `settings`), not started."""
        return self._add([name], lease, settings)[0]

    def _add(self, names: Sequence[str | None], lease: str | None,
             settings: Sequence[tuple[str, str]]) -> list[FleetAgent]:
        added = []
        for name in names:
            name = name or "abcdefghijklmnopqrstuvwxyz"[len(self.agents)]
            agent = FleetAgent(self, name, self.root / name / "home", self.url)
            self.agents.append(agent)
            added.append(agent)
        # each `config set` is a new interpreter: configure the homes at the same time
        with ThreadPoolExecutor(max_workers=len(added) or 1) as pool:
            list(pool.map(lambda agent: agent.configure(("lease", lease or self.lease),
                                                        *settings), added))
        return added

    def start(self, count: int = 2, *, names: Sequence[str] = (),
              settings: Sequence[tuple[str, str]] = (), together: bool = False,
              ) -> list[FleetAgent]:
        """Add `count` agents (or one per name) and start them, each waited for until
        ready. On a fleet that never ran an agent the first one starts alone (it creates
        the schema), then the others together; `together=True` starts all at once."""
        chosen: list[str | None] = list(names) or [None] * count
        added = self._add(chosen, None, settings)
        rest = added
        if not together and not any(agent.runs for agent in self.agents if agent not in added):
            added[0].start()
            rest = added[1:]
        for agent in rest:
            agent.spawn()
        for agent in rest:
            agent.wait_ready()
        return added

    def store(self) -> StoreContract:
        """The shared store, opened in this process (closed at `close()` if the test
        does not close it first)."""
        store = open_store(self.root / "reader.db", url=self.url)
        self._stores.append(store)
        return store

    @contextlib.contextmanager
    def reading(self) -> Iterator[StoreContract]:
        """The shared store opened read-only for one look (closed after), as the
        read commands open it: cheap enough to poll."""
        store = open_store(self.root / "reader.db", url=self.url, read_only=True)
        try:
            yield store
        finally:
            store.close()

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one read-only query on the shared database (%s placeholders)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            return list(conn.execute(query, params).fetchall())

    def logs(self) -> str:
        return "\n".join(f"===== agent {a.name} ({a.home}) =====\n{a.log()}"
                         for a in self.agents)

    def close(self) -> None:
        """Kill every agent still running and close the stores opened here."""
        for agent in self.agents:
            agent.close()
        for store in self._stores:
            with contextlib.suppress(Exception):
                store.close()
        self._stores.clear()


def wait_alive_agents(fleet: Fleet, ids: set[str], timeout: float = 20) -> None:
    """Until exactly the agents `ids` are alive in the store (lease current, not
    stopped), read as `procctl agents` reads them."""
    def alive() -> bool:
        store = open_store(fleet.root / "reader.db", url=fleet.url, read_only=True)
        try:
            return {a.id for a in store.list_agents() if a.alive} == ids
        finally:
            store.close()
    wait_for(alive, timeout=timeout, interval=0.1, message=f"live agents {sorted(ids)}")
