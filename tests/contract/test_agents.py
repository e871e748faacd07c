"""Agents sharing a store (store/agents.py, store/postgres.py), through StoreContract's
methods only: registration and leases, claims of what dead agents left running, fencing
of an agent whose lease ran out, who owns an instance after each transition, and the
lost wake-up of multi-agent.md ("The trap"). Runs for every backend; fencing only where
several agents can share the store (PostgreSQL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from contract.backends import (
    DEFINITION,
    LONG_LEASE,
    Opener,
    checkpointed,
    deliver,
    in_lockstep,
    join_as_agent,
    paused,
    running,
    wait_lease_out,
)

from procctl.store import StoreContract
from procctl.store.clock import utc_now
from procctl.store.errors import Conflict, Fenced
from procctl.store.records import AgentRecord, SignalStatus, Status
from procctl.store.signals import DeliveryTarget, SignalWrite

#: a lease that runs out while the test waits (seconds)
SHORT_LEASE = 0.2
NOT_SHARED = ("SQLite: one agent holds the home's lock, so the backend does not fence "
              "(store/agents.py); the lease only shows in `procctl agents`")

Join = Callable[..., StoreContract]


@pytest.fixture
def join(backend: Opener) -> Iterator[Join]:
    """`join(agent_id, lease=..., pool=...)`: a new connection joined as that agent,
    closed after the test."""
    opened: list[StoreContract] = []

    def joined(agent_id: str, *, lease: float = LONG_LEASE,
               pool: str = "default") -> StoreContract:
        store = join_as_agent(backend, agent_id, lease=lease, pool=pool)
        opened.append(store)
        return store

    yield joined
    for store in opened:
        store.close()


def listed(store: StoreContract, agent_id: str) -> AgentRecord:
    [record] = [a for a in store.list_agents() if a.id == agent_id]
    return record


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def owner_epoch(store: StoreContract, instance_id: str) -> tuple[str | None, int]:
    record = store.get_instance(instance_id)
    return record.owner, record.epoch


def lose_lease(agent: StoreContract, observer: StoreContract) -> None:
    """Let `agent`'s lease run out: renewed for SHORT_LEASE seconds only (so it holds
    while the test sets up, however slow the machine), then waited out."""
    assert agent.agent_id is not None
    agent.renew_lease(SHORT_LEASE)
    wait_lease_out(observer, agent.agent_id)


def create(store: StoreContract, instance_id: str, pool: str | None = None) -> None:
    store.put_definition(DEFINITION, "contract", "1", None, "source")
    store.create_instance(instance_id, DEFINITION, "contract", "1", "{}", "{}", pool=pool)


# -- registration, leases, listing ------------------------------------------------------


def test_agents_are_listed_alive_with_pool_lease_and_running_instances_owned(
        store: StoreContract, join: Join) -> None:
    east = join("agent-east", pool="east")
    west = join("agent-west", pool="west")
    running(east, "i1")
    running(east, "i2")
    paused(east, "i3", "c3")  # owned, but not running: not counted
    agents = {a.id: a for a in store.list_agents()}
    assert set(agents) == {"agent-east", "agent-west"}
    now = datetime.now(UTC)
    for record, pool in ((agents["agent-east"], "east"), (agents["agent-west"], "west")):
        assert record.alive and record.stopped_at is None
        assert record.pool == pool
        assert now < when(record.lease_until) <= now + timedelta(seconds=LONG_LEASE + 5)
    assert (agents["agent-east"].owned, agents["agent-west"].owned) == (2, 0)
    assert agents["agent-east"].home == "/homes/agent-east"
    assert owner_epoch(store, "i1") == ("agent-east", 0)
    assert west.agent_id == "agent-west"


def test_renewing_a_lease_moves_its_end_later(store: StoreContract, join: Join) -> None:
    agent = join("agent-a", lease=5.0)
    before = when(listed(store, "agent-a").lease_until)
    renewed = when(agent.renew_lease(60.0))
    assert renewed > before + timedelta(seconds=50)
    assert when(listed(store, "agent-a").lease_until) == renewed


def test_a_second_incarnation_of_an_agent_id_replaces_the_first(
        backend: Opener, store: StoreContract, join: Join) -> None:
    first = join("agent-a", pool="east")
    running(first, "i1")
    second = backend()
    try:
        incarnation = second.register_agent(
            "agent-a", host="other-host", pool="west", home="/homes/again", pid=2,
            version="contract", lease_seconds=LONG_LEASE)
        assert incarnation
        [record] = store.list_agents()
        assert (record.id, record.host, record.pool, record.home) == (
            "agent-a", "other-host", "west", "/homes/again")
        assert record.alive and record.owned == 1
        if store.shared:
            # The first incarnation writes nothing more, though the ID's lease is live.
            with pytest.raises(Fenced):
                first.add_event("i1", "late")
            assert store.events("i1") == []
    finally:
        second.close()


def test_a_released_agent_is_stopped_and_its_instances_are_taken_at_once(
        store: StoreContract, join: Join) -> None:
    leaving = join("agent-a")
    running(leaving, "i1")
    peer = join("agent-b")
    assert peer.claim_orphans(pool="default") == []  # agent-a is alive
    leaving.release_agent()
    record = listed(store, "agent-a")
    assert not record.alive and record.stopped_at is not None
    assert when(record.lease_until) <= datetime.now(UTC) + timedelta(seconds=1)
    assert peer.claim_orphans(pool="default") == ["i1"]  # no waiting for a lease
    assert owner_epoch(store, "i1") == ("agent-b", 1)


# -- claims -------------------------------------------------------------------------------


def test_running_instances_of_an_agent_whose_lease_ran_out_are_claimed_once(
        store: StoreContract, join: Join) -> None:
    dying = join("agent-a")
    for name in ("i1", "i2", "i3"):
        checkpointed(dying, name, f"c-{name}")
    peer = join("agent-b")
    assert peer.claim_orphans(pool="default") == []  # its lease is still current
    lose_lease(dying, store)
    assert peer.claim_orphans(pool="default") == ["i1", "i2", "i3"]
    for name in ("i1", "i2", "i3"):
        assert owner_epoch(store, name) == ("agent-b", 1)
        assert store.get_checkpoint(name).iteration == 0  # run on from it, untouched
    assert peer.claim_orphans(pool="default") == []
    assert listed(store, "agent-b").owned == 3
    assert listed(store, "agent-a").owned == 0


def test_a_claim_respects_its_limit(store: StoreContract, join: Join) -> None:
    dying = join("agent-a")
    for n in range(5):
        running(dying, f"i{n}")
    lose_lease(dying, store)
    peer = join("agent-b")
    first = peer.claim_orphans(pool="default", limit=2)
    rest = peer.claim_orphans(pool="default", limit=10)
    assert (len(first), len(rest)) == (2, 3)
    assert sorted(first + rest) == [f"i{n}" for n in range(5)]


def test_running_instances_with_no_owner_are_claimed(store: StoreContract,
                                                     join: Join) -> None:
    running(store, "i1")  # a connection that is no agent's
    assert owner_epoch(store, "i1") == (None, 0)
    agent = join("agent-a")
    assert agent.claim_orphans(pool="default") == ["i1"]
    assert owner_epoch(store, "i1") == ("agent-a", 1)


def test_a_claim_takes_its_own_pool_and_no_pool_only(store: StoreContract,
                                                     join: Join) -> None:
    dying = join("agent-a")
    create(dying, "east-1", pool="east")
    create(dying, "west-1", pool="west")
    create(dying, "any-1")
    lose_lease(dying, store)
    east = join("agent-east", pool="east")
    assert east.claim_orphans(pool="east") == ["any-1", "east-1"]
    assert owner_epoch(store, "west-1") == ("agent-a", 0)
    west = join("agent-west", pool="west")
    assert west.claim_orphans(pool="west") == ["west-1"]
    assert owner_epoch(store, "west-1") == ("agent-west", 1)


def test_a_live_agents_instances_are_not_claimed(store: StoreContract, join: Join) -> None:
    alive = join("agent-a")
    running(alive, "i1")
    peer = join("agent-b")
    assert peer.claim_orphans(pool="default") == []
    assert owner_epoch(store, "i1") == ("agent-a", 0)
    at_start = peer.claim_orphans(pool="default", at_start=True)
    if store.shared:
        assert at_start == []
        assert owner_epoch(store, "i1") == ("agent-a", 0)
    else:
        # One agent per SQLite store (the home's lock): at start it takes every running
        # instance, whoever the store says owned it.
        assert at_start == ["i1"]
        assert owner_epoch(store, "i1") == ("agent-b", 1)


def test_paused_and_ended_instances_are_never_claimed(store: StoreContract,
                                                      join: Join) -> None:
    dying = join("agent-a")
    paused(dying, "paused", "c-paused")
    running(dying, "done")
    dying.finish_instance("done", Status.COMPLETED, result_json="1")
    running(dying, "broken")
    dying.finish_instance("broken", Status.FAILED, error_json="{}")
    lose_lease(dying, store)
    peer = join("agent-b")
    assert peer.claim_orphans(pool="default") == []
    assert peer.claim_orphans(pool="default", at_start=True) == []
    for name in ("paused", "done", "broken"):
        assert owner_epoch(store, name) == ("agent-a", 0)


def test_at_start_an_agent_takes_back_what_its_last_incarnation_left_running(
        backend: Opener, store: StoreContract, join: Join) -> None:
    before = join("agent-a")
    running(before, "mine-1")
    running(before, "mine-2")
    peer = join("agent-b")
    running(peer, "theirs")
    again = join("agent-a")  # restarted at once: the ID's lease never ran out
    assert again.claim_orphans(pool="default") == []  # its own owner is alive: itself
    taken = again.claim_orphans(pool="default", at_start=True)
    if store.shared:
        assert taken == ["mine-1", "mine-2"]
        assert owner_epoch(store, "theirs") == ("agent-b", 0)
    else:
        assert taken == ["mine-1", "mine-2", "theirs"]  # SQLite: every running one
    for name in ("mine-1", "mine-2"):
        assert owner_epoch(store, name) == ("agent-a", 1)


def test_two_claimers_at_once_take_every_instance_exactly_once(
        store: StoreContract, join: Join) -> None:
    dying = join("agent-dead")
    names = [f"i{n:03d}" for n in range(120)]
    for name in names[:100]:
        running(dying, name)
    for name in names[100:]:
        running(store, name)  # no owner at all
    lose_lease(dying, store)
    claimers = [join("agent-b"), join("agent-c")]
    taken: list[list[str]] = [[], []]

    def claim_all(index: int) -> Callable[[int], None]:
        def claim(_round: int) -> None:
            while batch := claimers[index].claim_orphans(pool="default", limit=5):
                taken[index].extend(batch)
        return claim

    results = in_lockstep(1, claim_all(0), claim_all(1))
    assert results == [[None, None]]
    b, c = taken
    assert not set(b) & set(c), sorted(set(b) & set(c))
    assert sorted(b + c) == names
    for name in names:
        owner, epoch = owner_epoch(store, name)
        assert epoch == 1, (name, epoch)
        assert owner == ("agent-b" if name in b else "agent-c")


# -- fencing (shared stores) --------------------------------------------------------------


def test_after_its_lease_ran_out_an_agent_writes_nothing(store: StoreContract,
                                                         join: Join) -> None:
    if not store.shared:
        pytest.skip(NOT_SHARED)
    late = join("agent-a")
    checkpointed(late, "i1", "c1")
    late.add_event("i1", "before")
    checkpoint = store.get_checkpoint("i1")
    lose_lease(late, store)
    lease_until = listed(store, "agent-a").lease_until
    late.queue_events([("i1", utc_now(), "queued", "{}", None, None)])
    writes: dict[str, Callable[[], object]] = {
        "save_checkpoint": lambda: late.save_checkpoint(
            "i1", "later", "c2", '{"late": true}', expires_at=None),
        "pause_instance": lambda: late.pause_instance(
            "i1", commit_value_json=None, resume_at=None),
        "add_event": lambda: late.add_event("i1", "late"),
        "finish_instance": lambda: late.finish_instance(
            "i1", Status.COMPLETED, result_json="1"),
        "create_instance": lambda: late.create_instance(
            "i2", DEFINITION, "contract", "1", "{}", "{}"),
        "renew_lease": lambda: late.renew_lease(LONG_LEASE),
    }
    for name, write in writes.items():
        with pytest.raises(Fenced):
            write()
        assert store.get_checkpoint("i1") == checkpoint, name
        assert [e.kind for e in store.events("i1")] == ["before"], name
        record = store.get_instance("i1")
        assert (record.status, record.owner, record.epoch) == (
            Status.RUNNING, "agent-a", 0), name
        assert [i.id for i in store.list_instances()] == ["i1"], name
        agent = listed(store, "agent-a")
        assert not agent.alive and agent.lease_until == lease_until, name


def test_a_takeover_and_a_late_pause_never_both_succeed(store: StoreContract,
                                                        join: Join) -> None:
    """A pause by an agent whose lease runs out at about that moment, raced against a
    peer's claims: either the pause came first (nothing to claim) or the claim did (the
    pause is fenced), never both. The timing varies from round to round."""
    if not store.shared:
        pytest.skip(NOT_SHARED)
    rounds, lease = 10, 0.1
    peer = join("agent-peer")
    for n in range(rounds):
        instance = f"i{n}"
        late = join(f"agent-late-{n}")
        checkpointed(late, instance, f"c{n}")
        started = time.monotonic()
        late.renew_lease(lease)  # it runs out at about started + lease
        offset = -0.03 + 0.06 * n / (rounds - 1)  # from before its end to after it
        done = threading.Event()

        def pause(_round: int, late: StoreContract = late, instance: str = instance,
                  at: float = started + lease + offset, done: threading.Event = done
                  ) -> object:
            time.sleep(max(0.0, at - time.monotonic()))
            try:
                return late.pause_instance(instance, commit_value_json=None, resume_at=None)
            finally:
                done.set()

        def claim(_round: int, done: threading.Event = done,
                  until: float = started + 10.0) -> list[str]:
            # Until it takes the instance, or the pause had ended before it looked.
            while time.monotonic() < until:
                ended = done.is_set()
                if (taken := peer.claim_orphans(pool="default")) or ended:
                    return taken
            return []

        [[paused_result, claimed]] = in_lockstep(1, pause, claim)
        record = store.get_instance(instance)
        if claimed == [instance]:
            assert isinstance(paused_result, Fenced), (n, paused_result, record)
            assert (record.status, record.owner, record.epoch) == (
                Status.RUNNING, "agent-peer", 1)
        else:
            assert claimed == [], (n, claimed)
            assert paused_result is None, (n, paused_result)
            assert (record.status, record.owner, record.epoch) == (
                Status.PAUSED, f"agent-late-{n}", 0)


def test_a_write_under_way_when_the_lease_runs_out_is_not_overtaken_by_a_takeover(
        backend: Opener, store: StoreContract, join: Join) -> None:
    """The late write and the takeover in a forced order: agent-a's pause passes its
    fence while its lease is current, then waits (for a delivery to the same correlation
    ID, which holds it); its lease runs out; a peer claims. The takeover must wait for
    the pause or skip the instance; a takeover that commits and a pause that commits
    after it would leave the peer running an instance that is paused."""
    if not store.shared:
        pytest.skip(NOT_SHARED)
    late = join("agent-a")
    checkpointed(late, "i1", "c1")
    peer = join("agent-b")
    late.renew_lease(1.0)  # time enough to pass the fence below, whatever the load
    holding = backend()
    inside, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def held(target: DeliveryTarget, now: str) -> SignalWrite:
        inside.set()
        release.wait(timeout=30)
        return SignalWrite(SignalStatus.REJECTED, "held the correlation ID for the test", None)

    def call(name: str, action: Callable[[], object]) -> threading.Thread:
        def run() -> None:
            try:
                results[name] = action()
            except Exception as exc:
                results[name] = exc
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    try:
        delivering = call("deliver", lambda: holding.deliver_signal(
            correlation_id="c1", source="contract", decide=held))
        assert inside.wait(timeout=10)
        pausing = call("pause", lambda: late.pause_instance(
            "i1", commit_value_json=None, resume_at=None))
        wait_lease_out(store, "agent-a")
        # Still under way after its lease ran out: it passed the fence before (a fenced
        # write fails at once) and waits for the delivery's lock.
        assert pausing.is_alive() and "pause" not in results
        claiming = call("claim", lambda: peer.claim_orphans(pool="default"))
        claiming.join(timeout=1.0)  # a claim that waits for the pause is right too
        release.set()
        for thread in (delivering, pausing, claiming):
            thread.join(timeout=10)
            assert not thread.is_alive()
    finally:
        release.set()
        holding.close()
    record = store.get_instance("i1")
    both = results["claim"] == ["i1"] and results["pause"] is None
    assert not both, (f"the takeover committed (owner {record.owner}, epoch "
                      f"{record.epoch}) and agent-a's pause committed after it (status "
                      f"{record.status})")
    if results["claim"] == ["i1"]:
        assert isinstance(results["pause"], Fenced | Conflict), results["pause"]
        assert (record.status, record.owner, record.epoch) == (Status.RUNNING, "agent-b", 1)
    else:
        assert results["pause"] is None, results["pause"]
        assert record.status is Status.PAUSED


# -- who owns an instance after a transition -----------------------------------------------


def test_transitions_through_an_agent_connection_make_it_the_owner(
        store: StoreContract, join: Join) -> None:
    a, b = join("agent-a"), join("agent-b")
    checkpointed(a, "i1", "c1")
    assert owner_epoch(store, "i1") == ("agent-a", 0)
    a.pause_instance("i1", commit_value_json=None, resume_at=None)
    assert deliver(b, "c1").outcome == SignalStatus.APPLIED  # a signal's resume
    assert store.get_instance("i1").owner == "agent-b"
    b.pause_instance("i1", commit_value_json=None, resume_at=None)
    a.take_resume("i1", Status.PAUSED)  # a schedule, an expiry that resumes
    assert store.get_instance("i1").owner == "agent-a"
    a.finish_instance("i1", Status.FAILED, error_json="{}")
    b.take_resume("i1", Status.FAILED)  # a retry
    assert store.get_instance("i1").owner == "agent-b"
    b.finish_instance("i1", Status.FAILED, error_json="{}")
    a.restart_instance("i1", (Status.FAILED,))
    assert (store.get_instance("i1").status, store.get_instance("i1").owner) == (
        Status.RUNNING, "agent-a")
    # A signal held for a checkpoint is taken by the pause: the pausing agent runs on.
    checkpointed(b, "i2", "c2")
    assert deliver(a, "c2").outcome == SignalStatus.PENDING
    assert b.pause_instance("i2", commit_value_json=None, resume_at=None) is not None
    assert (store.get_instance("i2").status, store.get_instance("i2").owner) == (
        Status.RUNNING, "agent-b")


# -- the lost wake-up -------------------------------------------------------------------------


def test_a_pause_and_a_delivery_at_once_never_leave_the_signal_pending(
        store: StoreContract, join: Join) -> None:
    """multi-agent.md, "The trap": one agent pauses an instance while another delivers
    its signal, many times: the signal is applied once whichever goes first, and never
    left pending with the instance paused."""
    rounds = 60
    pausing, delivering = join("agent-a"), join("agent-b")
    for n in range(rounds):
        checkpointed(pausing, f"i{n}", f"c{n}")
    results = in_lockstep(
        rounds,
        lambda n: pausing.pause_instance(f"i{n}", commit_value_json=None, resume_at=None),
        lambda n: deliver(delivering, f"c{n}", signal_id=f"s{n}", payload_json="1"))
    for n, (taken, delivery) in enumerate(results):
        assert not isinstance(taken, Exception), (n, taken)
        assert not isinstance(delivery, Exception), (n, delivery)
        record = store.get_instance(f"i{n}")
        outcome = store.signal_outcome(f"s{n}")
        assert outcome is not None
        assert not (record.status is Status.PAUSED
                    and outcome.status == SignalStatus.PENDING), n
        # Paused first: the delivery applies (its agent runs on). Delivered first: held,
        # and the pause takes it (the pausing agent runs on).
        if delivery.outcome == SignalStatus.APPLIED:
            assert taken is None, n
            assert record.owner == "agent-b", n
        else:
            assert delivery.outcome == SignalStatus.PENDING, (n, delivery)
            assert taken is not None and taken.status == SignalStatus.APPLIED, n
            assert record.owner == "agent-a", n
        assert outcome.status == SignalStatus.APPLIED, n
        assert record.status is Status.RUNNING, n
        assert store.get_checkpoint(f"i{n}").iteration == 1, n
    assert store.list_signals((SignalStatus.PENDING,)) == []
