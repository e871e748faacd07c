"""Several real agents on one PostgreSQL store share the work: a signal dropped on one
resumes what another paused, once; a child on one agent wakes its parent on another;
scheduled resumes and expiries happen once; a stopped or killed agent's instances are
taken over by a peer and can be followed there. Driven through the installed `procctl`
command and real `procctl agent run` processes (tests/fleet.py), 2 s leases."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fleet import Fleet, FleetAgent
from helpers import PROCCTL, Result, unique_key, wait_for
from pg_server import require_psycopg

require_psycopg()

PAUSE = """
[process]
name = "ma-pause"
[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "ma-{{ key }}"

[[steps]]
id = "done"
kind = "return"
[steps.value]
by = "{{ results['wait'].resumed_by }}"
payload = "{{ results['wait'].payload }}"
"""

CHILD = """
[process]
name = "ma-child"
[process.params.key]
type = "str"

[[steps]]
id = "ask"
kind = "checkpoint"
correlation_id = "child-{{ key }}"

[[steps]]
id = "answer"
kind = "return"
value = { answer = "{{ results['ask'].payload.answer }}", by = "{{ results['ask'].resumed_by }}" }
"""

PARENT = """
[process]
name = "ma-parent"
[process.params.key]
type = "str"

[[steps]]
id = "sub"
kind = "call"
file = "child.toml"
params = { key = "{{ key }}" }

[[steps]]
id = "done"
kind = "return"
value = { child = "{{ results['sub'] }}" }
"""

# The same call inside a parallel branch: the parent cannot pause there, so it waits
# for its child in memory, on the agent that runs it.
PARENT_IN_MEMORY = """
[process]
name = "ma-parent-in-memory"
[process.params.key]
type = "str"

[[steps]]
id = "both"
kind = "parallel"

[[steps.branches]]
name = "asked"
[[steps.branches.do]]
id = "sub"
kind = "call"
file = "child.toml"
params = { key = "{{ key }}" }

[[steps]]
id = "done"
kind = "return"
value = { child = "{{ results['sub'] }}" }
"""

TIMER = """
[process]
name = "ma-timer"
[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "timer-{{ key }}"
resume_after = "2s"

[[steps]]
id = "done"
kind = "return"
value = { by = "{{ results['wait'].resumed_by }}" }
"""

EXPIRING = """
[process]
name = "ma-expiring"
[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "ttl-{{ key }}"
ttl = "2s"
on_expire = { resume = { late = true } }

[[steps]]
id = "done"
kind = "return"
value = { by = "{{ results['wait'].resumed_by }}", payload = "{{ results['wait'].payload }}" }
"""

# A checkpoint that goes on at once, then a nap (`nap` seconds, `renap` after a
# takeover): an agent that dies or stops during the nap leaves the instance running, and
# whoever takes it over runs on from `cp`.
LONG = """
[process]
name = "ma-long"
[process.params.key]
type = "str"
[process.params.nap]
type = "float"
[process.params.renap]
type = "float"

[[steps]]
id = "cp"
kind = "checkpoint"
correlation_id = "long-{{ key }}"
continue = true

[[steps]]
id = "nap"
task = "sleep"
with = { seconds = "{{ renap if results['cp'].resumed_by == 'recovery' else nap }}" }

[[steps]]
id = "note"
task = "log"
with = { message = "after the nap" }

[[steps]]
id = "done"
kind = "return"
value = { by = "{{ results['cp'].resumed_by }}" }
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def drop_signal(directory: Path, name: str, document: dict[str, Any]) -> None:
    """The signal file protocol: NAME.tmp written, then renamed to NAME.json."""
    tmp = directory / f".{name}.tmp"
    tmp.write_text(json.dumps(document), encoding="utf-8")
    os.rename(tmp, directory / f"{name}.json")


def record(fleet: Fleet, instance_id: str) -> Any:
    with fleet.reading() as store:
        return store.get_instance(instance_id)


def kinds(fleet: Fleet, instance_id: str) -> list[str]:
    with fleet.reading() as store:
        return [event.kind for event in store.events(instance_id)]


def wait_status(fleet: Fleet, instance_id: str, status: str, timeout: float = 20) -> Any:
    return wait_for(lambda: (r := record(fleet, instance_id)).status == status and r,
                    timeout=timeout, interval=0.1,
                    message=f"instance {instance_id} to be {status}")


def wait_owner(fleet: Fleet, instance_id: str, agent: FleetAgent, timeout: float = 20) -> Any:
    return wait_for(lambda: (r := record(fleet, instance_id)).owner == agent.agent_id and r,
                    timeout=timeout, interval=0.05,
                    message=f"agent {agent.name} to own {instance_id}")


def wait_step_started(fleet: Fleet, instance_id: str, step: str, timeout: float = 20) -> None:
    def started() -> bool:
        with fleet.reading() as store:
            return any(e.kind == "step_started" and e.step_id == step
                       for e in store.events(instance_id))
    wait_for(started, timeout=timeout, interval=0.05,
             message=f"instance {instance_id} to start step {step}")


def signal_rows(fleet: Fleet, column: str, value: str) -> list[tuple[str, str, str | None]]:
    """(status, reason, instance_id) of the signals table's rows whose `column` is value."""
    assert column in ("signal_id", "correlation_id")
    rows = fleet.sql(f"SELECT status, coalesce(reason, ''), instance_id FROM signals "
                     f"WHERE {column} = %s ORDER BY received_at", value)
    return [(str(r[0]), str(r[1]), r[2]) for r in rows]


def show_on_both(a: FleetAgent, b: FleetAgent, instance_id: str) -> list[Result]:
    """`procctl show ID --json` on both homes at once."""
    results = at_once((a, ("show", instance_id, "--json")), (b, ("show", instance_id, "--json")))
    assert all(r.code == 0 for r in results), "\n".join(map(str, results))
    return results


def resume_on(agent: FleetAgent, fleet: Fleet, *args: str) -> Result:
    """`procctl resume ARGS` on the agent's home, which must succeed; on failure the
    message has the instances as the store holds them."""
    result = agent.procctl("resume", *args)
    assert result.code == 0, (f"{result}\ninstances in the store: " + repr(fleet.sql(
        "SELECT id, status, owner, epoch, correlation_id, paused_at FROM instances")))
    return result


def at_once(*calls: tuple[FleetAgent, tuple[str, ...]]) -> list[Result]:
    """Run one `procctl` command per agent at the same moment (threads released by a
    barrier); results in the order given."""
    barrier = threading.Barrier(len(calls))

    def run(call: tuple[FleetAgent, tuple[str, ...]]) -> Result:
        agent, args = call
        barrier.wait(timeout=30)
        return agent.procctl(*args)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_a_signal_file_dropped_on_b_resumes_what_a_paused_once(
        pair: Fleet, tmp_path: Path) -> None:
    fleet = pair
    a, b = pair
    key = unique_key()
    paused = a.procctl.ok("run", _write(tmp_path, "pause.toml", PAUSE), "-p", f"key={key}",
                          "--wait", "--json").json()
    assert paused["status"] == "paused", paused
    instance_id = paused["instance_id"]
    assert record(fleet, instance_id).owner == a.agent_id

    drop_signal(b.signals_dir, f"answer-{key}", {"correlation_id": f"ma-{key}",
                                                "payload": {"approved": True},
                                                "signal_id": f"answer-{key}"})
    done = wait_status(fleet, instance_id, "completed")
    assert done.owner == b.agent_id, (done.owner, a.agent_id, b.agent_id)
    assert (b.signals_dir / "processed" / f"answer-{key}.json").is_file()
    assert not list(a.signals_dir.glob("*.json")), "nothing reached A's directory"

    shown_a, shown_b = (r.json() for r in show_on_both(a, b, instance_id))
    assert shown_a == shown_b
    assert shown_b["result"] == {"by": "signal", "payload": {"approved": True}}
    history = Counter(e["kind"] for e in shown_b["history"])
    assert (history["signal_applied"], history["instance_resumed"],
            history["instance_completed"]) == (1, 1, 1), history
    assert [row[0] for row in signal_rows(fleet, "correlation_id", f"ma-{key}")] == [
        "applied"]


def test_resume_on_b_and_one_signal_id_sent_to_both_agents_at_once(
        pair: Fleet, tmp_path: Path) -> None:
    fleet = pair
    a, b = pair
    definition = _write(tmp_path, "pause.toml", PAUSE)
    first, second = unique_key(), unique_key()
    ids = {}
    for key in (first, second):
        summary = a.procctl.ok("run", definition, "-p", f"key={key}", "--wait",
                               "--json").json()
        assert summary["status"] == "paused", summary
        ids[key] = summary["instance_id"]

    # resume on B, for an instance A paused: B applies it, runs it on, prints its steps
    resumed = resume_on(b, fleet, "--correlation-id", f"ma-{first}", "-d", "n=1")
    assert "done" in resumed.out and "completed" in resumed.out, str(resumed)
    done = wait_status(fleet, ids[first], "completed")
    assert done.owner == b.agent_id
    shown = b.procctl.ok("show", ids[first], "--json").json()
    assert shown["result"] == {"by": "manual", "payload": {"n": 1}}

    # The same signal_id on A and on B in the same moment: the store applies it once
    # and records the other delivery as a duplicate. (Each command reports what became
    # of the signal_id: applied, when its await finds the peer's delivery first; or
    # exit 7, duplicate.)
    signal_id = f"twice-{second}"
    args = ("resume", "--correlation-id", f"ma-{second}", "--signal-id", signal_id,
            "--pending", "-d", "n=2")
    results = at_once((a, args), (b, args))
    for result in results:
        assert (result.code == 0 and f"Resumed instance {ids[second]}" in result.out) \
            or (result.code == 7 and "duplicate" in result.err), str(result)
    assert any("\u2713 done" in result.out for result in results), results
    rows = signal_rows(fleet, "signal_id", signal_id)
    assert sorted(row[0] for row in rows) == ["applied", "duplicate"], rows
    done = wait_status(fleet, ids[second], "completed")
    assert json.loads(str(done.result_json)) == {"by": "manual", "payload": {"n": 2}}
    history = Counter(kinds(fleet, ids[second]))
    assert (history["signal_applied"], history["instance_resumed"],
            history["instance_completed"]) == (1, 1, 1), history


def test_a_parent_on_a_completes_when_its_child_is_resumed_on_b(
        pair: Fleet, tmp_path: Path) -> None:
    fleet = pair
    a, b = pair
    _write(tmp_path, "child.toml", CHILD)
    key = unique_key()
    parent = a.procctl.ok("run", _write(tmp_path, "parent.toml", PARENT), "-p",
                          f"key={key}", "--wait", "--json").json()
    assert parent["status"] == "paused", parent
    assert parent["waiting_for"]["correlation_id"] == f"child-{key}", parent

    resumed = resume_on(b, fleet, "--correlation-id", f"child-{key}", "-d", "answer=42")
    assert "completed" in resumed.out, str(resumed)
    done = wait_status(fleet, parent["instance_id"], "completed")
    shown = dict(zip("ab", (r.json() for r in show_on_both(a, b, parent["instance_id"])),
                     strict=True))
    assert shown["a"] == shown["b"]
    assert shown["a"]["result"] == {"child": {"answer": 42, "by": "manual"}}, shown["a"]
    history = Counter(e["kind"] for e in shown["a"]["history"])
    assert (history["child_started"], history["instance_resumed"],
            history["instance_completed"]) == (1, 1, 1), history
    assert done.owner in (a.agent_id, b.agent_id)


def test_a_parent_waiting_in_memory_on_a_wakes_when_its_child_ends_on_b(
        pair: Fleet, tmp_path: Path) -> None:
    fleet = pair
    a, b = pair
    _write(tmp_path, "child.toml", CHILD)
    key = unique_key()
    parent_id = a.procctl.ok("run", _write(tmp_path, "parent.toml", PARENT_IN_MEMORY), "-p",
                             f"key={key}", "--json").json()["instance_id"]
    child_id = wait_for(lambda: [r[0] for r in fleet.sql(
        "SELECT id FROM instances WHERE parent_id = %s AND status = 'paused'", parent_id)],
        message="the child to pause")[0]
    assert record(fleet, parent_id).status == "running"  # waiting in A's memory

    resume_on(b, fleet, "--correlation-id", f"child-{key}", "-d", "answer=7")
    assert record(fleet, child_id).owner == b.agent_id
    done = wait_status(fleet, parent_id, "completed", timeout=10)
    assert done.owner == a.agent_id and done.epoch == 0, (done.owner, done.epoch)
    assert json.loads(str(done.result_json)) == {"child": {"answer": 7, "by": "manual"}}
    history = Counter(kinds(fleet, parent_id))
    assert (history["child_started"], history["instance_completed"]) == (1, 1), history


def test_scheduled_resumes_and_expiries_happen_once_across_two_agents(
        pair: Fleet, tmp_path: Path) -> None:
    fleet = pair
    a, b = pair
    timer = _write(tmp_path, "timer.toml", TIMER)
    expiring = _write(tmp_path, "expiring.toml", EXPIRING)
    per_agent = 2
    calls = [(agent, ("run", str(definition), "-p", f"key={unique_key()}", "--json"))
             for agent in (a, b) for definition in (timer, expiring) for _ in range(per_agent)]
    started: dict[str, str] = {}  # instance ID -> the definition's name
    for result in at_once(*calls):  # started together, so they fall due together
        assert result.code == 0, str(result)
        started[result.json()["instance_id"]] = Path(result.args[1]).stem
    assert len(started) == 4 * per_agent

    for instance_id in started:
        wait_status(fleet, instance_id, "completed", timeout=30)
    owners: Counter[str] = Counter()
    with fleet.reading() as store:
        for instance_id, name in started.items():
            done = store.get_instance(instance_id)
            owners[str(done.owner)] += 1
            result = json.loads(str(done.result_json))
            expected = ({"by": "schedule"} if name == "timer"
                        else {"by": "expiry", "payload": {"late": True}})
            assert result == expected, (instance_id, result)
            history = [e.kind for e in store.events(instance_id)]
            counts = Counter(history)
            assert (counts["instance_paused"], counts["instance_resumed"],
                    counts["instance_completed"]) == (1, 1, 1), (instance_id, history)
            assert len(history) == len(set(history)) + 2, (instance_id, history)  # steps x2
            if name == "timer":
                assert counts["scheduled_resume"] <= 1, (instance_id, history)
    assert set(owners) <= {a.agent_id, b.agent_id}, owners
    print(f"resumed by agent: {dict(owners)}")


def test_agents_lists_both_and_a_stopped_agents_instance_is_taken_over_at_once(
        fleet: Fleet, tmp_path: Path) -> None:
    # A 5 s lease: a takeover well within it shows the clean stop released the lease.
    a, b = fleet.start(2, settings=[("lease", "5s"), ("shutdown_grace", "0.1s")])
    key = unique_key()
    instance_id = a.procctl.ok("run", _write(tmp_path, "long.toml", LONG), "-p",
                               f"key={key}", "-p", "nap=30", "-p", "renap=2",
                               "--json").json()["instance_id"]
    wait_step_started(fleet, instance_id, "nap")

    for agent in (a, b):
        listed = {x["id"]: x for x in agent.procctl.ok("agents", "--json").json()}
        assert set(listed) == {a.agent_id, b.agent_id}, listed
        assert all(x["alive"] and x["state"] == "alive" and x["pool"] == "default"
                   for x in listed.values()), listed
        assert (listed[a.agent_id]["owned"], listed[b.agent_id]["owned"]) == (1, 0), listed
        assert listed[a.agent_id]["home"] == str(a.home), listed
    table = b.procctl.ok("agents").out.splitlines()
    assert len(table) == 3 and all(" alive " in line for line in table[1:]), table

    assert a.stop() == 0, a.log()
    stopped = time.monotonic()
    wait_owner(fleet, instance_id, b, timeout=10)
    took = time.monotonic() - stopped
    assert took < 2.5, f"B took A's instance over {took:.1f}s after A stopped (lease 5 s)"
    listed = {x["id"]: x for x in b.procctl.ok("agents", "--json").json()}
    assert (listed[a.agent_id]["state"], listed[a.agent_id]["alive"],
            listed[a.agent_id]["owned"]) == ("stopped", False, 0), listed
    assert (listed[b.agent_id]["alive"], listed[b.agent_id]["owned"]) == (True, 1), listed

    done = wait_status(fleet, instance_id, "completed")
    assert done.owner == b.agent_id and done.epoch == 1, (done.owner, done.epoch)
    assert json.loads(str(done.result_json)) == {"by": "recovery"}


def _follow(agent: FleetAgent, instance_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Follow an instance through the agent's `watch` request until it settles: the
    events it sends, and the summary at the end."""
    events: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for kind, payload in agent.client.stream("watch", timeout=30, instance_id=instance_id):
        if kind == "event":
            events.append(payload)
        else:
            summary = payload
    return events, summary


def test_an_instance_followed_on_two_agents_is_taken_over_after_a_kill_of_its_runner(
        fleet: Fleet, tmp_path: Path) -> None:
    """`run --wait` on A loses its agent to kill -9; a peer takes the instance over and
    runs it on from its checkpoint. Users on B and C who follow it (the agent's `watch`
    request: no `procctl` command makes it) from before the kill see its remaining
    steps and its outcome, whichever of the two takes it over."""
    a, b, c = fleet.start(3)
    definition = _write(tmp_path, "long.toml", LONG)
    key = unique_key()
    waiting = subprocess.Popen(
        [PROCCTL, "run", str(definition), "-p", f"key={key}", "-p", "nap=30", "-p", "renap=1",
         "--wait"],
        env=a.procctl.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        instance_id = wait_for(lambda: [r[0] for r in fleet.sql(
            "SELECT id FROM instances WHERE process_name = 'ma-long'")],
            message="the instance in the store")[0]
        wait_step_started(fleet, instance_id, "nap")
        # B and C follow it while A runs it (they have two seconds, the lease, to
        # connect before anyone can take it over)
        followed = {agent.name: pool.submit(_follow, agent, instance_id) for agent in (b, c)}
        a.kill()
        killed = time.monotonic()
        out, err = waiting.communicate(timeout=30)
        assert waiting.returncode != 0, (out, err)
        assert "closed the connection" in err, (out, err)

        peers = {b.agent_id: b, c.agent_id: c}
        taken = wait_for(lambda: (r := record(fleet, instance_id)).owner in peers and r,
                         timeout=15, interval=0.05, message="a peer to take the instance over")
        took = time.monotonic() - killed
        assert taken.status == "running" and taken.epoch == 1, taken
        assert took < 2 + 3, f"takeover {took:.1f}s after the kill, lease 2 s"
        runner = peers[taken.owner]
        outcomes = {name: future.result(timeout=30) for name, future in followed.items()}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()

    done = wait_status(fleet, instance_id, "completed")
    assert done.owner == runner.agent_id
    for name, (events, summary) in outcomes.items():
        role = "the agent that took it over" if name == runner.name else "a bystander"
        what = f"{name} ({role}): {summary.get('status')}, events {events}"
        assert summary["status"] == "completed", what
        assert summary["result"] == {"by": "recovery"}, what
        steps = [(e["kind"], e["step_id"]) for e in events]
        assert ("step_started", "note") in steps and ("step_finished", "done") in steps, what
        assert steps[-1] == ("instance_completed", None), what
    # Both saw the same steps, in the same order, from the recovery on.
    tails = [[(e["kind"], e["step_id"]) for e in events if e["kind"] != "instance_recovered"]
             for events, _ in outcomes.values()]
    tails = [tail[tail.index(("step_started", "note")):] for tail in tails]
    assert tails[0] == tails[1], tails
    history = Counter(kinds(fleet, instance_id))
    assert history["instance_completed"] == 1 and history["instance_resumed"] == 1, history
