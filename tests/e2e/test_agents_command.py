"""`procctl agents` lists the agents sharing a home's store, and the read commands find
the store a home names (PROCCTL_STORE_URL or store_url), PostgreSQL included; without
the PostgreSQL driver they say so in one line."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpers import SAMPLES, Procctl, run_paused, wait_for

from procctl.store import Store, open_store

AGENT_KEYS = {"id", "host", "pool", "home", "pid", "version", "state", "alive", "started_at",
              "lease_until", "stopped_at", "owned"}
NO_DRIVER = ("Error: the store is PostgreSQL (postgresql://app:***@db.invalid/procctl) and "
             "its driver is not installed\nHint: pip install 'procctl[postgres]'\n")
READS = (("list",), ("list", "--json"), ("agents",), ("show", "0123456789ab"),
         ("list-paused",), ("signals",), ("purge-expired", "--dry-run"))


def _register(store: Store, agent_id: str, lease: float, *, pool: str = "default") -> None:
    store.register_agent(agent_id, host="host-a", pool=pool, home=f"/homes/{agent_id}",
                         pid=4242, version="0.1.0", lease_seconds=lease)


def test_agents_shows_each_state_and_hides_agents_stopped_long_ago(procctl: Procctl) -> None:
    procctl.home.mkdir(mode=0o700)
    db = procctl.home / "procctl.db"
    for agent_id, lease in (("live", 120.0), ("lost", -30.0), ("gone", 10.0),
                            ("old", 10.0)):
        store = Store(db)
        try:
            _register(store, agent_id, lease, pool="eu-west" if agent_id == "live" else "default")
            if agent_id in ("gone", "old"):
                store.release_agent()
        finally:
            store.close()
    with sqlite3.connect(db) as raw:  # one agent stopped two hours ago
        raw.execute("UPDATE agents SET stopped_at = ? WHERE id = 'old'",
                    ((datetime.now(UTC) - timedelta(hours=2)).isoformat(),))
    raw.close()

    listed = procctl.ok("agents")
    rows = {line.split()[0]: line for line in listed.out.splitlines()[1:]}
    assert set(rows) == {"live", "lost", "gone"}, listed.out
    assert rows["live"].split()[2:5] == ["eu-west", "4242", "alive"], listed.out
    assert re.search(r" in (1m \d+s|2m) ", rows["live"]), listed.out
    assert "lease lost" in rows["lost"] and "s ago" in rows["lost"], listed.out
    assert "stopped" in rows["gone"], listed.out
    assert "1 agent(s) that stopped over an hour ago not shown" in listed.err, str(listed)
    # piped: no padding at all (no line ends in spaces)
    assert not any(line.endswith(" ") for line in listed.out.splitlines()), repr(listed.out)

    every = procctl.ok("agents", "--all", "--json").json()
    assert every[0]["id"] == "live"
    assert {a["id"]: a["state"] for a in every} == {
        "live": "alive", "lost": "lease lost", "gone": "stopped", "old": "stopped"}
    assert all(set(a) == AGENT_KEYS for a in every), every
    assert [a["id"] for a in procctl.ok("agents", "--json").json()] == [
        a["id"] for a in every if a["id"] != "old"]


def test_agents_in_a_home_with_no_store(procctl: Procctl) -> None:
    result = procctl.ok("agents")
    assert result.out == f"No procctl home at {procctl.home} (nothing has run there).\n"
    assert procctl.ok("agents", "--json").json() == []


def _without_driver(tmp_path: Path) -> str:
    """A PYTHONPATH on which `import psycopg` raises ImportError."""
    fake = tmp_path / "nodriver" / "psycopg"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('libpq is not installed')\n")
    return str(fake.parent)


def test_without_the_driver_every_read_of_a_postgresql_store_fails_in_one_line(
        procctl: Procctl, tmp_path: Path) -> None:
    env = {"PYTHONPATH": _without_driver(tmp_path),
           "PROCCTL_STORE_URL": "postgresql://app:hunter2@db.invalid/procctl"}
    for result in procctl.many(*READS, env=env):
        assert (result.code, result.err) == (6, NO_DRIVER), str(result)
        assert "hunter2" not in result.out + result.err


def test_without_the_driver_a_store_url_setting_fails_the_same_way(
        procctl: Procctl, tmp_path: Path) -> None:
    procctl.ok("config", "set", "store_url", "postgresql://app@db.invalid/procctl")
    result = procctl("list", env={"PYTHONPATH": _without_driver(tmp_path)})
    assert result.code == 6, str(result)
    assert result.err == NO_DRIVER.replace("app:***@", "app@"), str(result)


def test_config_set_refuses_a_password_in_store_url(procctl: Procctl) -> None:
    result = procctl("config", "set", "store_url", "postgresql://app:hunter2@db/procctl")
    assert result.code == 2, str(result)
    assert result.err == ("Error: setting store_url: it holds a password; passwords go in "
                          "~/.pgpass, PGPASSFILE or PGPASSWORD, never in config.toml\n")
    assert not (procctl.home / "config.toml").exists()


def test_a_postgresql_store_with_nothing_in_it_says_so(procctl: Procctl, pg_url: str) -> None:
    env = {"PROCCTL_STORE_URL": pg_url}
    blank = procctl("list", env=env)  # a database no agent has used: read, never written
    assert blank.code == 6, str(blank)
    assert blank.err.startswith(f"Error: the store {pg_url} holds no procctl schema"), str(blank)
    assert "No procctl home" not in blank.out + blank.err, str(blank)

    open_store(procctl.home / "procctl.db", url=pg_url).close()  # a writer makes the schema
    listed, agents, as_json = procctl.many(("list",), ("agents",), ("list", "--json"), env=env)
    for result in (listed, agents, as_json):
        assert result.code == 0, str(result)
        assert "No procctl home" not in result.out + result.err, str(result)
    assert listed.out.startswith("No instances in the store postgresql://"), listed.out
    assert agents.out.startswith("No agents in the store postgresql://"), agents.out
    assert as_json.json() == []
    assert not procctl.home.exists()  # a read makes no home


def test_config_show_says_when_the_environment_overrides_store_url(procctl: Procctl) -> None:
    procctl.ok("config", "set", "store_url", "service=procctl")
    plain = procctl.ok("config", "show")
    assert "service=procctl" in plain.out and "PROCCTL_STORE_URL" not in plain.err
    shown = procctl.ok("config", "show", env={
        "PROCCTL_STORE_URL": "postgresql://app:hunter2@db/procctl"})
    assert ("PROCCTL_STORE_URL is set and overrides store_url: the store is "
            "postgresql://app:***@db/procctl.") in shown.err, str(shown)
    assert "hunter2" not in shown.out + shown.err


def test_agents_lists_the_running_agent_of_a_sqlite_home(procctl: Procctl) -> None:
    procctl.ok("agent", "start")
    pid = procctl.agent_pid()
    agents = procctl.ok("agents", "--json").json()
    assert len(agents) == 1, agents
    agent = agents[0]
    assert set(agent) == AGENT_KEYS, agent
    assert (agent["pid"], agent["state"], agent["alive"]) == (pid, "alive", True), agent
    assert agent["home"] == str(procctl.home) and agent["pool"] == "default", agent
    assert agent["owned"] >= 0 and agent["stopped_at"] is None, agent

    lines = procctl.ok("agents").out.splitlines()
    assert lines[0].split() == ["AGENT", "HOST", "POOL", "PID", "STATE", "LEASE", "INSTANCES"]
    assert len(lines) == 2, lines
    row = lines[1].split()
    assert row[0] == agent["id"] and row[3] == str(pid) and row[4] == "alive", lines
    assert "in " in lines[1], lines  # the lease runs on

    procctl.ok("agent", "stop")  # read from the store with the agent down: stopped
    stopped = procctl.ok("agents", "--json").json()
    assert [(a["id"], a["state"], a["alive"]) for a in stopped] == [
        (agent["id"], "stopped", False)], stopped




def test_list_reads_the_instances_another_home_ran_on_the_shared_store(
        tmp_path: Path, pg_url: str) -> None:
    runner = Procctl(tmp_path / "runner")
    reader = Procctl(tmp_path / "reader")
    env = {"PROCCTL_STORE_URL": pg_url}
    runner.env.update(env)
    try:
        done = runner.ok("run", SAMPLES / "hello.toml", "--wait", "--json").json()
        assert done["status"] == "completed", done
        listed = reader.ok("--home", tmp_path / "reader", "list", "--json", env=env).json()
        assert [row["instance_id"] for row in listed] == [done["instance_id"]]
        shown = reader.ok("show", done["instance_id"], "--json", env=env).json()
        assert shown["status"] == "completed", shown
        agents = wait_for(lambda: reader.ok("agents", "--json", env=env).json(),
                          message="the runner's agent in the store")
        assert [a["home"] for a in agents] == [str(runner.home)], agents
        assert agents[0]["pid"] == runner.agent_pid() and agents[0]["state"] == "alive"
        assert not reader.home.exists()
    finally:
        runner.stop_agent()


def test_agent_status_shows_its_id_pool_store_and_lease(procctl: Procctl) -> None:
    procctl.ok("config", "set", "pool", "eu-west.2")
    procctl.ok("config", "set", "lease", "5s")
    procctl.ok("agent", "start")
    data = procctl.ok("agent", "status", "--json").json()
    assert (data["pool"], data["lease_seconds"]) == ("eu-west.2", 5.0), data
    assert data["store"] == str(procctl.home / "procctl.db"), data
    listed = procctl.ok("agents", "--json").json()
    assert [a["id"] for a in listed] == [data["agent_id"]], listed
    lines = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1)
                 for line in procctl.ok("agent", "status").out.splitlines())
    assert lines["Agent ID"] == data["agent_id"], lines
    assert lines["Pool"] == "eu-west.2" and lines["Store"] == data["store"], lines
    assert re.fullmatch(r"5s, until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(in [1-5]s\)",
                        lines["Lease"]), lines


def test_a_password_in_procctl_store_url_is_never_shown(tmp_path: Path, pg_url: str) -> None:
    # The test server trusts its socket, so the password is not checked: it only has to
    # stay out of every output and log.
    url = pg_url.replace("postgresql://procctl@", "postgresql://procctl:hunter2@")
    assert url != pg_url
    runner = Procctl(tmp_path / "runner")
    runner.env["PROCCTL_STORE_URL"] = url
    try:
        runner.ok("agent", "start")
        results = [runner.ok("agent", "status"), runner.ok("agent", "status", "--json"),
                   runner.ok("agents"), runner.ok("list"), runner.ok("config", "show")]
        assert runner.ok("agent", "status", "--json").json()["store"] == url.replace(
            "hunter2", "***")
        results.append(runner.ok("agent", "stop"))
    finally:
        runner.stop_agent()
    for result in results:
        assert "hunter2" not in result.out + result.err, str(result)
    for log in ("agent.log", "agent.out"):
        path = runner.home / log
        assert not path.exists() or "hunter2" not in path.read_text(), log


def test_the_paused_signals_and_purge_reads_of_a_shared_store(tmp_path: Path,
                                                              pg_url: str) -> None:
    runner = Procctl(tmp_path / "runner")
    runner.env["PROCCTL_STORE_URL"] = pg_url
    reader = Procctl(tmp_path / "reader")  # no home of its own: the store is the server
    env = {"PROCCTL_STORE_URL": pg_url}
    try:
        paused = run_paused(runner, SAMPLES / "approval.toml", "-p", "order=PG-1")
        table, as_json, signals, purge = reader.many(
            ("list-paused",), ("list-paused", "--json"), ("signals", "--json"),
            ("purge-expired", "--dry-run"), env=env)
    finally:
        runner.stop_agent()
    for result in (table, as_json, signals, purge):
        assert result.code == 0, str(result)
        assert "No procctl home" not in result.out + result.err, str(result)
    assert "approval-PG-1" in table.out and paused["instance_id"] in table.out, table.out
    assert [(r["instance_id"], r["correlation_id"]) for r in as_json.json()] == [
        (paused["instance_id"], "approval-PG-1")]
    assert signals.json() == {"signals": [], "unread_files": []}
    assert purge.out == "Nothing has expired.\n", str(purge)
    assert not reader.home.exists()


def test_resume_on_a_shared_store_from_a_home_with_no_file(tmp_path: Path, pg_url: str) -> None:
    """`resume` checks the correlation ID in the store the home names, not in a file."""
    runner = Procctl(tmp_path / "runner")
    runner.env["PROCCTL_STORE_URL"] = pg_url
    try:
        paused = run_paused(runner, SAMPLES / "approval.toml", "-p", "order=PG-1")
        assert not (runner.home / "procctl.db").exists()
        listed = runner.ok("list-paused", "--json").json()
        assert [r["instance_id"] for r in listed] == [paused["instance_id"]]
        done = runner("resume", "--correlation-id", "approval-PG-1", "--data", "approved=true",
                      "--data", "by=ada", "--json")
        assert done.code == 0, str(done)
        assert runner.ok("show", paused["instance_id"], "--json").json()["status"] == "completed"
    finally:
        runner.stop_agent()
