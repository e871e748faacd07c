"""`procctl agents` lists the agents sharing a home's store, and the read commands find
the store a home names (PROCCTL_STORE_URL or store_url), PostgreSQL included; without
the PostgreSQL driver they say so in one line."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpers import Procctl

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
    # piped: as wide as the table, not padded to a terminal's width
    assert {len(line) for line in listed.out.splitlines()} == {
        len(listed.out.splitlines()[0])}, repr(listed.out)

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
