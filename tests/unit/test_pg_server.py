"""The throwaway PostgreSQL server the store tests rely on (tests/pg_server.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import (
    PREFIX,
    PgServer,
    PgUnavailable,
    StopMode,
    database_name,
    remove_leftovers,
    require_psycopg,
    start_server,
    unavailable,
)

psycopg = require_psycopg()

pytestmark = pytest.mark.postgres

TESTS = Path(__file__).resolve().parent.parent


def _dbname(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])


def _gone(pid: int) -> bool:
    """The process has exited (a zombie counts: PID 1 in a container may not reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


@pytest.fixture
def temp_root() -> Iterator[Path]:
    """A private temp root the postgres user can reach (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="procctl-pgtest-"))
    root.chmod(0o1777)
    yield root
    remove_leftovers(root)
    root.rmdir()


def test_committed_rows_are_seen_from_another_connection(pg_url: str) -> None:
    with psycopg.connect(pg_url) as writer:
        writer.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        writer.execute("INSERT INTO t VALUES (1, 'one')")
        writer.commit()
        with psycopg.connect(pg_url) as reader:
            assert reader.execute("SELECT v FROM t").fetchall() == [("one",)]


def test_the_server_listens_on_its_socket_only_with_fsync_on(pg_server: PgServer,
                                                             pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('listen_addresses', 'fsync', 'unix_socket_directories')").fetchall())
    assert settings == {"listen_addresses": "", "fsync": "on",
                        "unix_socket_directories": str(pg_server.base)}
    assert pg_server.base.parent in (Path(tempfile.gettempdir()), Path("/tmp"))
    if os.geteuid() == 0:  # the server refuses root: it runs as another user
        assert pg_server.base.stat().st_uid != 0


def test_each_test_gets_its_own_empty_database(pg_server: PgServer, pg_url: str) -> None:
    other = pg_server.create_database(database_name("other"))
    try:
        assert other != pg_url
        with psycopg.connect(pg_url) as a, psycopg.connect(other) as b:
            a.execute("CREATE TABLE only_in_a (x int)")
            a.commit()
            names = ("SELECT current_database(), count(*) FROM pg_tables "
                     "WHERE schemaname = 'public'")
            (name_a, tables_a), = a.execute(names).fetchall()
            (name_b, tables_b), = b.execute(names).fetchall()
        assert name_a != name_b
        assert (tables_a, tables_b) == (1, 0)
    finally:
        pg_server.drop_database(_dbname(other))


def test_database_names_fit_postgres_and_differ() -> None:
    long_id = "tests/unit/test_x.py::test_" + "a" * 200 + "[param-1]"
    first, second = database_name(long_id), database_name(long_id)
    assert first != second
    assert len(first) <= 63 and first.isascii()
    assert first.replace("_", "").isalnum() and first == first.lower()
    assert "param_1" in first  # the id's tail, the part that tells tests apart


def test_drop_database_ends_open_sessions(pg_server: PgServer) -> None:
    name = database_name("drop")
    url = pg_server.create_database(name)
    conn = psycopg.connect(url)
    try:
        pg_server.drop_database(name)
        rows = pg_server.admin("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        assert rows == []
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()


def test_terminate_backends_ends_the_sessions_of_one_database(pg_server: PgServer,
                                                              pg_url: str) -> None:
    victim = psycopg.connect(pg_url)
    try:
        assert pg_server.terminate_backends(_dbname(pg_url)) == 1
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
    finally:
        victim.close()
    with psycopg.connect(pg_url) as conn:  # new sessions are still welcome
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_keeps_committed_data_and_breaks_open_connections(
        pg_server: PgServer, pg_url: str, mode: StopMode) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE t (v text)")
        conn.execute("INSERT INTO t VALUES ('kept')")
        conn.commit()
    held = psycopg.connect(pg_url)
    try:
        held.execute("SELECT 1")
        held.commit()
        before = pg_server.pid
        pg_server.restart(mode)
        assert pg_server.pid not in (None, before)
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
    finally:
        held.close()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [("kept",)]


def test_a_stopped_server_is_started_again_for_the_next_database(pg_server: PgServer) -> None:
    pg_server.stop()
    assert not pg_server.running() and pg_server.pid is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_server.url(), connect_timeout=5)
    pg_server.ensure_running()
    name = database_name("again")
    try:
        with psycopg.connect(pg_server.create_database(name)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pg_server.drop_database(name)


def test_a_subprocess_reaches_the_server_by_url(pg_url: str) -> None:
    # procctl processes get only the URL: nothing else is needed to connect.
    code = textwrap.dedent("""
        import sys, psycopg
        with psycopg.connect(sys.argv[1]) as conn:
            print(conn.execute("SELECT current_user").fetchone()[0])
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    proc = subprocess.run([sys.executable, "-c", code, pg_url], capture_output=True,
                          text=True, timeout=30, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "procctl"


def test_a_cluster_left_by_a_killed_run_is_stopped_and_removed(temp_root: Path) -> None:
    # A run in a child process that dies before its teardown: the next run's
    # remove_leftovers must stop that orphaned server and delete its directory.
    code = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        sys.path.insert(0, {str(TESTS)!r})
        import pg_server
        server = pg_server.start_server(Path({str(temp_root)!r}))
        print(server.base, server.pid, flush=True)
        os._exit(0)  # no atexit, no teardown: like a run killed with SIGKILL
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    base_text, pid_text = proc.stdout.split()
    base, pid = Path(base_text), int(pid_text)
    assert base.parent == temp_root and base.name.startswith(PREFIX)
    assert not _gone(pid)  # the orphaned server still runs

    assert remove_leftovers(temp_root) == [base]
    assert not base.exists()
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def test_a_live_run_s_cluster_is_left_alone(pg_server: PgServer) -> None:
    assert pg_server.base not in remove_leftovers(pg_server.base.parent)
    assert pg_server.running()


def test_a_killed_server_is_started_again_on_its_data(pg_server: PgServer, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE t (v text)")
        conn.execute("INSERT INTO t VALUES ('durable')")
        conn.commit()
    pid = pg_server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pg_server.pid is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pg_server.pid is None
    pg_server.ensure_running()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [("durable",)]


def test_no_server_binaries_skips_or_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCCTL_PG_BINDIR", "/nonexistent")
    with pytest.raises(PgUnavailable, match="PROCCTL_PG_BINDIR") as unavailable_here:
        start_server()
    reason = str(unavailable_here.value)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no initdb and pg_ctl in /nonexistent"):
        unavailable(reason)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="unavailable under CI=true"):
        unavailable(reason)


def test_the_fixture_fails_under_ci_without_a_server() -> None:
    # The whole wiring, in a separate pytest run: under CI=true a missing server is an
    # error, never a silent skip.
    env = {**os.environ, "CI": "true", "PROCCTL_PG_BINDIR": "/nonexistent"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n0", "-p", "no:cacheprovider",
         f"{__file__}::test_committed_rows_are_seen_from_another_connection"],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "PostgreSQL server unavailable under CI=true: no initdb and pg_ctl" in proc.stdout
