"""Faults across agents sharing one PostgreSQL store: an agent killed with SIGKILL while
40 instances run on it, an agent frozen (SIGSTOP) past its lease and woken after a peer
took its instances over, the server restarted (cleanly, as after a crash) or the
agents' sessions ended while two agents run instances, a session ended in the middle of
a commit, and agents opening an empty store at the same moment.

Real agents (`procctl agent run`, tests/fleet.py), a real server. The instances run
tests/faults/kit.py's ledger process: every step appends a line to a ledger file and
naps between checkpoints, so a fault lands mid-way. Afterwards the store's history and
the ledger show what ran where: no step that a committed checkpoint covers ran again,
every instance completed once, and nothing a fenced agent tried to write landed."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from faults.kit import check_ledger_order, ledger, ledger_process, position
from fleet import Fleet, FleetAgent
from helpers import wait_for
from pg_server import PgServer, require_psycopg

from procctl.agent import values
from procctl.agent.client import AgentClient
from procctl.agent.paths import HomePaths
from procctl.store import open_store

psycopg = require_psycopg()

CHECKPOINTS = 4
LEASE = 2.0  # the fleet's default lease, in seconds
CLAIM_INTERVAL = min(1.0, LEASE / 4)  # agent/scheduler.py: how often an agent claims
SLACK = 2.5  # a shared 2-core machine: process scheduling, 40 recoveries at once

History = list[tuple[int, str, str | None]]  # (event id, kind, step id)


# -- starting instances and reading what they did --------------------------------------


def start_instances(agent: FleetAgent, definition: Path,
                    params: list[dict[str, Any]]) -> list[str]:
    """Start one instance per params on `agent`, through its socket as `procctl run`
    (without --wait) does: a new `procctl` process per instance would take seconds."""
    client = AgentClient(HomePaths.resolve(agent.home))
    source = definition.read_text()
    ids = []
    for one in params:
        data = client.request("run", source=source, file=str(definition),
                              base_dir=str(definition.parent), params=values.encode(one),
                              wait=False)
        ids.append(str(data["instance_id"]))
    return ids


def ledger_definition(tmp_path: Path, name: str, checkpoints: int = CHECKPOINTS) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(ledger_process(name, checkpoints))
    return path


def statuses(fleet: Fleet, ids: list[str]) -> dict[str, str]:
    rows = fleet.sql("SELECT id, status FROM instances WHERE id = ANY(%s)", ids)
    found = {str(r[0]): str(r[1]) for r in rows}
    return {i: found.get(i, "missing") for i in ids}


def owners(fleet: Fleet, ids: list[str]) -> dict[str, str | None]:
    rows = fleet.sql("SELECT id, owner FROM instances WHERE id = ANY(%s)", ids)
    return {str(r[0]): r[1] for r in rows}


def committed(fleet: Fleet, ids: list[str]) -> dict[str, str]:
    """instance -> the step of its checkpoint in the store now."""
    rows = fleet.sql("SELECT instance_id, step_id FROM checkpoints WHERE instance_id = ANY(%s)",
                     ids)
    return {str(r[0]): str(r[1]) for r in rows}


def histories(fleet: Fleet, ids: list[str]) -> dict[str, History]:
    rows = fleet.sql("SELECT id, instance_id, kind, step_id FROM events"
                     " WHERE instance_id = ANY(%s) ORDER BY id", ids)
    found: dict[str, History] = {i: [] for i in ids}
    for event_id, instance_id, kind, step_id in rows:
        found[str(instance_id)].append((int(event_id), str(kind), step_id))
    return found


def wait_completed(fleet: Fleet, ids: list[str], timeout: float = 60) -> None:
    def done() -> bool:
        now = statuses(fleet, ids)
        settled = {i: s for i, s in now.items() if s not in ("running", "completed")}
        assert not settled, f"instances neither running nor completed: {settled}"
        return all(s == "completed" for s in now.values())

    wait_for(done, timeout=timeout, interval=0.1, message="every instance to complete")


def wait_midway(fleet: Fleet, ids: list[str], started: float) -> None:
    """Until every instance has committed a checkpoint (a completed one no longer has
    one: then the fault would come too late, and the test says so)."""
    def midway() -> bool:
        ended = [i for i, s in statuses(fleet, ids).items() if s != "running"]
        assert not ended, (
            f"{len(ended)} instances ended before every one had a checkpoint (starting "
            f"{len(ids)} took {time.monotonic() - started:.1f}s): naps too short")
        return len(committed(fleet, ids)) == len(ids)

    wait_for(midway, timeout=30, interval=0.05,
             message="every instance to commit its first checkpoint")


def step_place(step_id: str) -> float:
    """Where a step of the ledger process stands: s1 < nap1 < cp1 (and its blocks) < s2
    ... < done."""
    if step_id == "done":
        return 1000.0
    if step_id.startswith("nap"):
        return position(f"s{step_id[3:]}") + 0.5
    return position(step_id)


def check_taken_over_once(instance_id: str, history: History,
                          at_kill: str | None) -> None:
    """The history of an instance that one agent ran up to a checkpoint and a second
    agent took over from there: the second ran on from that checkpoint (never an older
    one than the store held when the first died: `at_kill`), through its recover block,
    and nothing the checkpoint covers ran again; each later step ran once."""
    kinds = [kind for _, kind, _ in history]
    where = f"instance {instance_id}: {[(k, s) for _, k, s in history]}"
    assert kinds.count("instance_recovered") == 1, where
    assert kinds.count("instance_completed") == 1, where
    split = kinds.index("instance_recovered")
    before = [(kind, step) for _, kind, step in history[:split] if step]
    after = [(kind, step) for _, kind, step in history[split:] if step]
    started_after = [step for kind, step in after if kind == "step_started"]
    assert started_after and started_after[0].startswith("recover-cp"), (
        f"the peer did not run on through a recover block: {where}")
    resumed_at = started_after[0].removeprefix("recover-")
    if at_kill is not None:
        assert step_place(resumed_at) >= step_place(at_kill), (
            f"resumed at {resumed_at}, older than the checkpoint {at_kill} the store held "
            f"when the agent died: {where}")
    # Nothing at or before the checkpoint ran again (its own recover block aside).
    again = [step for step in started_after
             if step != f"recover-{resumed_at}" and step_place(step) <= step_place(resumed_at)]
    assert not again, f"steps the checkpoint {resumed_at} covers ran again {again}: {where}"
    # Before it: each step ran once, on the first agent.
    for kind in ("step_started", "step_finished"):
        counts = Counter(step for k, step in before if k == kind)
        for step, count in counts.items():
            assert count == 1, f"{step}: {count} {kind} before the takeover: {where}"
    for k in range(1, CHECKPOINTS + 2):
        if step_place(f"s{k}") < step_place(resumed_at):
            assert ("step_finished", f"s{k}") in before, where
    # After it: each step once, and every step after the checkpoint ran.
    for kind in ("step_started", "step_finished"):
        counts = Counter(step for k, step in after if k == kind)
        repeated = {step: n for step, n in counts.items() if n > 1}
        assert not repeated, f"{kind} more than once after the takeover {repeated}: {where}"
    for k in range(1, CHECKPOINTS + 2):
        if step_place(f"s{k}") > step_place(resumed_at):
            assert ("step_finished", f"s{k}") in after, where


def check_ledger(book: Path, ids: list[str], at_kill: dict[str, str],
                 length_at_kill: int, checkpoints: int = CHECKPOINTS) -> None:
    """The ledger the steps appended to: per instance, the order kit.check_ledger_order
    allows (at-least-once steps between checkpoints, commit blocks once); every step
    ran; and no line written after the kill is of a step the store's checkpoint at the
    kill covered (its recover block aside)."""
    entries = ledger(book)
    for instance_id in ids:
        mine = [(index, words) for index, words in enumerate(entries)
                if words[0] == instance_id]
        check_ledger_order(instance_id, [words for _, words in mine])
        names = [words[1] for _, words in mine]
        for k in range(1, checkpoints + 2):
            assert f"s{k}" in names, f"{instance_id} never ran s{k}: {names}"
        step = at_kill.get(instance_id)
        if step is None:
            continue
        late = [words[1] for index, words in mine if index >= length_at_kill
                and position(words[1]) <= position(step) and words[1] != f"recover-{step}"]
        assert not late, (f"{instance_id}: {late} ran after the agent died with {step} "
                          f"committed: {names}")


# -- 0. starting together -----------------------------------------------------------------


def test_agents_opening_an_empty_store_at_the_same_moment_all_open_it(
        pg_url: str, tmp_path: Path) -> None:
    """Agents started together on a new database: one creates the schema under the
    schema lock, the others wait for it and use it (issue 12: "two agents starting
    together do not both migrate"). Three connections open the store at once, as three
    agents' start-ups do."""
    barrier = threading.Barrier(3)
    errors: list[str] = []

    def open_one(number: int) -> None:
        barrier.wait()
        try:
            open_store(tmp_path / f"{number}.db", url=pg_url).close()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [], errors


# -- 1. kill -9 --------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_sigkill_of_an_agent_running_40_instances_its_peer_runs_them_on(
        fleet: Fleet, tmp_path: Path) -> None:
    a, b = fleet.start(2)
    rng = random.Random()
    book = tmp_path / "ledger.txt"
    definition = ledger_definition(tmp_path, "killed-midway")
    started = time.monotonic()
    ids = start_instances(a, definition, [
        {"ledger": str(book), "nap": round(rng.uniform(0.8, 1.4), 2)} for _ in range(40)])
    # Mid-way: every instance has committed a checkpoint, none has finished.
    wait_midway(fleet, ids, started)
    a.kill()
    killed = time.monotonic()
    length_at_kill = len(ledger(book))
    at_kill = committed(fleet, ids)
    early = [i for i, s in statuses(fleet, ids).items() if s != "running"]
    assert not early, f"instances ended before the kill (naps too short?): {early}"
    assert set(owners(fleet, ids).values()) == {a.agent_id}

    wait_for(lambda: set(owners(fleet, ids).values()) == {b.agent_id}, timeout=30,
             interval=0.05, message="agent b to own every instance of the killed a")
    took = time.monotonic() - killed
    print(f"\nb owned all 40 instances {took:.2f}s after a was killed (lease {LEASE}s)")
    bound = LEASE + CLAIM_INTERVAL + SLACK
    assert took <= bound, f"takeover took {took:.2f}s, more than {bound}s"

    wait_completed(fleet, ids)
    assert b.alive, b.log()
    found = histories(fleet, ids)
    for instance_id in ids:
        check_taken_over_once(instance_id, found[instance_id], at_kill.get(instance_id))
    check_ledger(book, ids, at_kill, length_at_kill)
    places = Counter(at_kill.values())
    print(f"checkpoints held at the kill: {dict(sorted(places.items()))}")


# -- 2. SIGSTOP past the lease, then SIGCONT --------------------------------------------


def store_state(fleet: Fleet, ids: list[str]) -> dict[str, Any]:
    """What any write for these instances would change."""
    return {
        "instances": fleet.sql("SELECT id, status, owner, epoch, updated_at, result_json"
                               " FROM instances WHERE id = ANY(%s) ORDER BY id", ids),
        "events": fleet.sql("SELECT count(*), max(id) FROM events"),
        "checkpoints": fleet.sql("SELECT instance_id, step_id, created_at FROM checkpoints"
                                 " ORDER BY instance_id"),
        "signals": fleet.sql("SELECT count(*) FROM signals"),
    }


def frozen_past_lease(fleet: Fleet, tmp_path: Path, count: int,
                      nap: float) -> tuple[FleetAgent, FleetAgent, list[str], Path]:
    """a runs `count` instances; once each has a checkpoint, a is frozen and b takes
    every one over. Returns (a, b, ids, ledger)."""
    a, b = fleet.start(2)
    book = tmp_path / "ledger.txt"
    definition = ledger_definition(tmp_path, "frozen")
    started = time.monotonic()
    ids = start_instances(a, definition, [{"ledger": str(book), "nap": nap}] * count)
    wait_midway(fleet, ids, started)
    a.freeze()
    frozen = time.monotonic()
    assert set(statuses(fleet, ids).values()) == {"running"}
    wait_for(lambda: set(owners(fleet, ids).values()) == {b.agent_id}, timeout=30,
             interval=0.05, message="agent b to own every instance of the frozen a")
    took = time.monotonic() - frozen
    print(f"\nb owned the frozen a's {count} instances {took:.2f}s after SIGSTOP")
    assert took <= LEASE + CLAIM_INTERVAL + SLACK, f"takeover took {took:.2f}s"
    assert a.alive, "the frozen agent is gone: SIGSTOP should have kept it"
    return a, b, ids, book


def full_log(agent: FleetAgent) -> str:
    """Everything the agent printed (FleetAgent.log keeps only the end)."""
    return agent.output.read_text(errors="replace")


def check_woken_agent_stopped(a: FleetAgent) -> None:
    code = a.wait_exit(timeout=20)
    assert code != 0, f"the fenced agent's `agent run` exited with 0:\n{a.log()}"
    assert "ERROR lease lost: " in full_log(a), (
        f"the fenced agent did not log 'lease lost':\n{a.log()}")


@pytest.mark.timeout(120)
def test_frozen_agent_woken_after_its_peer_finished_its_instances_writes_nothing(
        fleet: Fleet, tmp_path: Path) -> None:
    a, b, ids, _ = frozen_past_lease(fleet, tmp_path, count=10, nap=0.8)
    wait_completed(fleet, ids)
    before = store_state(fleet, ids)

    a.thaw()
    check_woken_agent_stopped(a)
    # b is idle now: anything that changed came from a.
    assert store_state(fleet, ids) == before, "the woken agent's writes landed"
    found = histories(fleet, ids)
    for instance_id in ids:
        check_taken_over_once(instance_id, found[instance_id], None)
    listed = {x["id"]: x["alive"] for x in b.procctl.ok("agents", "--json").json()}
    assert listed == {a.agent_id: False, b.agent_id: True}, listed
    assert b.alive, b.log()


@pytest.mark.timeout(120)
def test_frozen_agent_woken_while_its_peer_runs_its_instances_is_refused(
        fleet: Fleet, tmp_path: Path) -> None:
    """a wakes while b is still running what it took over: a's late writes (a step's
    end, a checkpoint, a completion) would show as repeats in the history."""
    a, b, ids, book = frozen_past_lease(fleet, tmp_path, count=10, nap=1.2)
    assert "running" in statuses(fleet, ids).values(), "b finished before a woke"

    a.thaw()
    check_woken_agent_stopped(a)
    wait_completed(fleet, ids)
    found = histories(fleet, ids)
    for instance_id in ids:
        check_taken_over_once(instance_id, found[instance_id], None)
    # The steps a was running when frozen may end after it wakes (side effects are at
    # least once), but a must start no step after its lease is lost.
    for instance_id in ids:
        entries = [words for words in ledger(book) if words[0] == instance_id]
        check_ledger_order(instance_id, entries)
    assert b.alive, b.log()


# -- 3. the server restarted --------------------------------------------------------------


def cut_off(pg_server: PgServer, how: str, dbname: str) -> None:
    """Take the server away from the agents for a moment: a clean restart (clients
    disconnected), a crash-like one (recovery at start), or their sessions ended."""
    if how == "restart":
        pg_server.restart()
    elif how == "crash":
        pg_server.restart("immediate")
    else:
        assert pg_server.terminate_backends(dbname) > 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["restart", "crash", "terminate"])
def test_server_restart_mid_run_every_instance_completes(
        fleet: Fleet, pg_server: PgServer, tmp_path: Path, how: str) -> None:
    # The lease outlasts the restart: an agent cut off longer than its lease is fenced
    # (that is test 2); here both must ride the outage out.
    lease = 8.0
    a = fleet.add("a", lease=f"{lease:g}s").start()
    b = fleet.add("b", lease=f"{lease:g}s").start()
    book = tmp_path / "ledger.txt"
    # Many short checkpoints: commits are in flight when the server goes away.
    checkpoints = 12
    definition = ledger_definition(tmp_path, "server-restart", checkpoints)
    params = [{"ledger": str(book), "nap": 0.3}] * 10
    started = time.monotonic()
    ids = start_instances(a, definition, params) + start_instances(b, definition, params)
    wait_midway(fleet, ids, started)

    began = time.monotonic()
    cut_off(pg_server, how, fleet.url.split("?")[0].rsplit("/", 1)[1])
    outage = time.monotonic() - began
    print(f"\nserver {how}: {outage:.2f}s")
    assert outage < lease - 1, f"the restart took {outage:.2f}s: the test needs a longer lease"

    wait_completed(fleet, ids)
    for agent in (a, b):
        assert agent.alive, f"agent {agent.name} ended after the restart:\n{agent.log()}"
        seen: list[dict[str, Any]] = []

        def ready(agent: FleetAgent = agent, seen: list[dict[str, Any]] = seen) -> bool:
            seen.append(agent.status())
            return seen[-1].get("state") == "ready"

        try:
            wait_for(ready, timeout=15, interval=0.2, message=f"agent {agent.name} ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its status: {seen[-1]}") from None
        assert seen[-1]["pid"] == agent.pid
    found = histories(fleet, ids)
    for instance_id in ids:
        kinds = Counter(kind for _, kind, _ in found[instance_id])
        assert kinds["instance_completed"] == 1, (instance_id, found[instance_id])
        assert kinds["instance_failed"] == 0, (instance_id, found[instance_id])
        # The leases held through the outage: no agent took over, nothing recovered.
        assert kinds["instance_recovered"] == 0, (instance_id, found[instance_id])
    check_ledger(book, ids, {}, 0, checkpoints)
    shown = a.procctl.ok("show", ids[0], "--json").json()
    assert shown["result"]["resumed_by"] == [None] * checkpoints, shown


#: A deferred trigger that ends its own session while COMMIT runs, once (a sequence is
#: not rolled back with the transaction it served): the agent's connection is lost in
#: the middle of a commit, the server rolls the transaction back.
CUT_AT_COMMIT = """
CREATE SEQUENCE cut_at_commit_count;
CREATE FUNCTION cut_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('cut_at_commit_count') = 1 THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER cut_at_commit AFTER INSERT OR UPDATE ON checkpoints
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cut_at_commit();
"""


@pytest.mark.timeout(120)
def test_session_lost_during_a_commit_the_agent_connects_again(
        fleet: Fleet, tmp_path: Path) -> None:
    """The server ends the agent's session while it commits a checkpoint (as a restart
    or pg_terminate_backend does at that moment): the agent connects again, the
    instances complete on it, and its state is back to ready."""
    (a,) = fleet.start(1)
    with psycopg.connect(fleet.url, autocommit=True) as conn:
        conn.execute(CUT_AT_COMMIT)
    book = tmp_path / "ledger.txt"
    definition = ledger_definition(tmp_path, "cut-at-commit")
    ids = start_instances(a, definition, [{"ledger": str(book), "nap": 0.1}] * 5)
    try:
        wait_completed(fleet, ids, timeout=30)
    finally:
        cuts = fleet.sql("SELECT last_value, is_called FROM cut_at_commit_count")[0]
        assert cuts[1], "no checkpoint was committed: the session was never cut"
    assert cuts[0] > 1, "no commit came after the one cut"
    assert a.alive, a.log()
    wait_for(lambda: a.status().get("state") == "ready", timeout=15, interval=0.2,
             message="the agent to be ready again")
    assert "the store answers again" in full_log(a), a.log()
    check_ledger(book, ids, {}, 0)
    # The history the lost transaction carried is written again with its retry: each
    # step once, each checkpoint once (nothing crashed, nothing was taken over).
    for instance_id, history in histories(fleet, ids).items():
        counts = Counter((kind, step) for _, kind, step in history)
        wrong = {f"{kind} {step}": n for (kind, step), n in counts.items()
                 if kind in ("step_started", "step_finished", "checkpoint_saved") and n != 1}
        wrong.update({f"s{k} never finished": 0 for k in range(1, CHECKPOINTS + 2)
                      if counts[("step_finished", f"s{k}")] == 0})
        assert not wrong, f"instance {instance_id}: {wrong}: {history}"
