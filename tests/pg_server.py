"""A throwaway PostgreSQL cluster for the tests: real server, private Unix socket, no TCP.

`start_server()` runs `initdb` and `pg_ctl start` in a new directory under the system temp
dir (not pytest's tmp_path: its 0700 parents keep the `postgres` user out). The server
refuses to run as root, so as root both run as the `postgres` user; otherwise as ourselves.
The directory holds `data/`, the socket (mode 0777, so root and procctl processes reach it)
and `server.log`. fsync stays on: the benchmarks measure durable commits.

Each directory records the pid of the process that made it (`owner.pid`); a later run stops
and removes directories whose owner is dead, so a killed run leaves nothing in the way.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, NoReturn
from urllib.parse import quote

import pytest

PREFIX = "procctl-pg-"
PORT = 5432
SUPERUSER = "procctl"
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the final NUL
NAME_MAX = 63  # PostgreSQL's identifier length
NO_PSYCOPG = "psycopg cannot be imported ({}): pip install 'psycopg[binary]>=3.1'"
StopMode = Literal["smart", "fast", "immediate"]


class PgUnavailable(Exception):
    """No server can be had here: no binaries, no psycopg, or initdb/start failed."""


@dataclass(frozen=True)
class RunAs:
    """The account the server's tools run as (None: ourselves)."""

    uid: int
    gid: int
    name: str


def unavailable(reason: str, *, module: bool = False) -> NoReturn:
    """Fail under CI=true (the server must be there), skip with the reason otherwise.
    `module`: called at a test module's top level (a failure is then a collection error)."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"PostgreSQL server unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL server unavailable: {reason}", allow_module_level=module)


def require_psycopg() -> ModuleType:
    """psycopg, for a test module's top level: `psycopg = require_psycopg()`. Without it
    the module is skipped, or fails under CI=true."""
    try:
        import psycopg
    except ImportError as exc:
        unavailable(NO_PSYCOPG.format(exc), module=True)
    return psycopg


def find_bindir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`: $PROCCTL_PG_BINDIR if set, else PATH,
    else the newest /usr/lib/postgresql/<version>/bin."""
    chosen = os.environ.get("PROCCTL_PG_BINDIR")
    if chosen:
        bindir = Path(chosen)
        return bindir if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file() else None
    initdb = shutil.which("initdb")
    if initdb:
        bindir = Path(initdb).resolve().parent
        if (bindir / "pg_ctl").is_file():
            return bindir
    found = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin"):
        version = candidate.parent.name
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            found.append((tuple(int(p) for p in re.findall(r"\d+", version)), candidate))
    return max(found)[1] if found else None


def server_account() -> RunAs | None:
    """Who runs the server: the `postgres` user when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise PgUnavailable(
            "running as root and there is no `postgres` user to run the server as "
            "(install Debian's postgresql package, or run the tests as a non-root user)"
        ) from None
    return RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)


def database_name(test_id: str) -> str:
    """A fresh database name from a test id: lowercase [a-z0-9_], the id's tail, a uuid;
    at most 63 characters."""
    tag = uuid.uuid4().hex[:12]
    words = re.sub(r"[^a-z0-9]+", "_", test_id.lower()).strip("_")
    room = NAME_MAX - len("t__") - len(tag)
    return f"t_{words[-room:].lstrip('_')}_{tag}"


def _clean_env() -> dict[str, str]:
    # The user's PGHOST, PGPORT, PGDATA... must not steer our private cluster.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _pid_alive(pid: int) -> bool:
    """The process runs (a zombie does not: PID 1 of a container may never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True  # no /proc here: kill(0) has to do


def _temp_root() -> Path:
    root = Path(tempfile.gettempdir())
    longest = len(f"{root}/{PREFIX}xxxxxxxx/.s.PGSQL.{PORT}")
    return root if longest <= SOCKET_PATH_MAX else Path("/tmp")


@dataclass
class PgServer:
    """One running cluster in a private directory; URLs reach it over its Unix socket."""

    base: Path
    bindir: Path
    run_as: RunAs | None
    _closed: bool = field(default=False, repr=False)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for `dbname` over the socket, as the superuser `procctl`."""
        host = quote(str(self.base), safe="/")
        return f"postgresql://{SUPERUSER}@/{quote(dbname, safe='')}?host={host}&port={PORT}"

    # -- the server process ------------------------------------------------------------

    def pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return _run(self.run_as, [str(self.bindir / "pg_ctl"), *args, "-D", str(self.data)],
                    cwd=self.base, timeout=timeout)

    def start(self) -> None:
        """Start the server on the existing data and wait until it takes connections."""
        # After a kill -9 the old server's processes take a moment to go: retry a while.
        attempts = 40 if self._remove_stale_lock() else 1
        for attempt in range(attempts):
            proc = self.pg_ctl("start", "-w", "-t", "60", "-s", "-l", str(self.log),
                               timeout=90)
            if proc.returncode == 0:
                return
            if attempt + 1 < attempts:
                time.sleep(0.25)
        raise PgUnavailable(f"pg_ctl start failed in {self.base}: "
                            f"{proc.stdout}{proc.stderr}\n{self.log_tail()}")

    def _remove_stale_lock(self) -> bool:
        """Remove postmaster.pid when its server is dead. The server would do it itself,
        unless that pid is a zombie nobody reaped (PID 1 of a container may not)."""
        lock = self.data / "postmaster.pid"
        if not lock.exists() or self.pid is not None:
            return False
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        return True

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server: "fast" (clients disconnected, clean shutdown), "smart" or
        "immediate" (like a crash: recovery runs at the next start)."""
        proc = self.pg_ctl("stop", "-w", "-t", "60", "-s", "-m", mode, timeout=90)
        if proc.returncode != 0 and self.running():
            raise RuntimeError(f"pg_ctl stop failed in {self.base}: {proc.stdout}{proc.stderr}")

    def restart(self, mode: StopMode = "fast") -> None:
        """Stop then start on the same data; open connections get an error."""
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        return self.pg_ctl("status", timeout=30).returncode == 0

    def ensure_running(self) -> None:
        """Start the server again if a test left it stopped or killed it."""
        if self.pid is None:  # no postmaster.pid, or its process is gone
            self.start()

    @property
    def pid(self) -> int | None:
        """The postmaster's pid (for fault tests that kill it), None when stopped."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "--server.log--\n" + "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Stop the server at once and remove its directory; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.pg_ctl("stop", "-w", "-t", "30", "-s", "-m", "immediate", timeout=45)
        pid = self.pid
        if pid is not None:  # pg_ctl could not stop it: do not leave it running
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)

    # -- databases ---------------------------------------------------------------------

    def admin(self, sql: str, params: tuple[Any, ...] = (), *, ident: str | None = None) -> Any:
        """Run one statement in autocommit on the `postgres` database. `{}` in `sql` takes
        `ident`, quoted as an identifier. Returns the rows (or None)."""
        import psycopg
        from psycopg import sql as q

        query = q.SQL(sql).format(q.Identifier(ident)) if ident is not None else q.SQL(sql)
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        self.admin("CREATE DATABASE {}", ident=name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database even with sessions still open on it (WITH (FORCE))."""
        self.admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident=name)

    def terminate_backends(self, dbname: str) -> int:
        """End every session on `dbname` (waiting up to 5 s for each); how many ended."""
        rows = self.admin(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
            "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        return int(rows[0][0])


def _run(run_as: RunAs | None, argv: list[str], *, cwd: Path,
         timeout: float) -> subprocess.CompletedProcess[str]:
    user: dict[str, Any] = {}
    if run_as is not None:
        user = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
    return subprocess.run(argv, cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **user)


def remove_leftovers(root: Path | None = None) -> list[Path]:
    """Stop and remove clusters left by runs that died (their owner pid is gone).
    Directories of live runs, and ones we cannot read, are left alone."""
    removed = []
    bindir = find_bindir()
    for base in (root or _temp_root()).glob(f"{PREFIX}*"):
        try:
            owner = int((base / "owner.pid").read_text())
        except (OSError, ValueError):
            # No owner yet: a run between mkdtemp and writing it, or not ours. Old and
            # ownerless (an hour) means a run died right there.
            with contextlib.suppress(OSError):
                if time.time() - base.stat().st_mtime < 3600:
                    continue
            owner = 0
        if owner and _pid_alive(owner):
            continue
        try:
            st = base.stat()
        except OSError:
            continue
        if st.st_uid != os.geteuid() and os.geteuid() != 0:
            continue
        if bindir is not None and (base / "data" / "postmaster.pid").exists():
            run_as = (RunAs(st.st_uid, st.st_gid, str(st.st_uid))
                      if st.st_uid != os.geteuid() else None)
            with contextlib.suppress(Exception):
                _run(run_as, [str(bindir / "pg_ctl"), "stop", "-w", "-s", "-m", "immediate",
                              "-D", str(base / "data")], cwd=Path("/"), timeout=45)
        shutil.rmtree(base, ignore_errors=True)
        removed.append(base)
    return removed


def start_server(root: Path | None = None) -> PgServer:
    """initdb a new cluster in a new directory under `root` (default: the system temp
    dir) and start it; raises PgUnavailable with the reason."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PgUnavailable(NO_PSYCOPG.format(exc)) from None
    bindir = find_bindir()
    if bindir is None:
        where = os.environ.get("PROCCTL_PG_BINDIR") or "PATH or /usr/lib/postgresql/*/bin"
        raise PgUnavailable(f"no initdb and pg_ctl in {where} (apt-get install postgresql, "
                            "or set PROCCTL_PG_BINDIR to their directory)")
    run_as = server_account()
    root = root or _temp_root()
    remove_leftovers(root)
    base = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
    (base / "owner.pid").write_text(str(os.getpid()))
    server = PgServer(base, bindir, run_as)
    atexit.register(server.close)  # also when the session fixture's teardown never runs
    try:
        if run_as is not None:
            os.chown(base, run_as.uid, run_as.gid)  # stays 0700: private to that user
        initdb = _run(run_as, [str(bindir / "initdb"), "--no-sync", "--no-instructions",
                               "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--locale=C",
                               "-D", str(server.data)], cwd=base, timeout=120)
        if initdb.returncode != 0:
            raise PgUnavailable(f"initdb failed in {base}: {initdb.stdout}{initdb.stderr}")
        with (server.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# tests/pg_server.py: a private Unix socket, no TCP; durable commits\n"
                "listen_addresses = ''\n"
                f"unix_socket_directories = '{_conf_quote(str(base))}'\n"
                "unix_socket_permissions = 0777\n"
                f"port = {PORT}\n"
                "fsync = on\n"
            )
        server.start()
    except BaseException:
        server.close()
        raise
    return server


def _conf_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")
