"""The home is its owner's: procctl follows no symbolic link in it, and refuses a home or
a file in it that belongs to another user or that others may write, before it creates,
truncates or writes anything. And `--home` mistakes are usage errors that name the home.

Run through the real command: `agent run` (the foreground agent), `agent start` (the
background one) and the read commands.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers import Procctl, Result

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0,
                             reason="making files of another user needs root")


def _victim(tmp_path: Path, name: str) -> tuple[Path, tuple[bytes, int, int]]:
    """A file of the user outside the home, which a link in the home points at."""
    path = tmp_path / name
    path.write_bytes(b"precious: " + name.encode() + b"\n")
    os.chmod(path, 0o600)
    return path, _state(path)


def _state(path: Path) -> tuple[bytes, int, int]:
    info = path.stat()
    return path.read_bytes(), info.st_mtime_ns, stat.S_IMODE(info.st_mode)


def _one_error(result: Result, code: int, *words: str) -> str:
    assert result.code == code, str(result)
    errors = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, str(result)
    for word in words:
        assert word in errors[0], str(result)
    assert "Traceback" not in result.err and "procctl bug" not in result.err, str(result)
    return errors[0]


def _private_home(procctl: Procctl) -> Path:
    procctl.home.mkdir(mode=0o700)
    return procctl.home


@pytest.mark.parametrize("name", ["agent.lock", "agent.log", "agent.out", "config.toml"])
def test_a_home_file_linked_outside_is_refused_and_its_target_left_untouched(
        procctl: Procctl, tmp_path: Path, name: str) -> None:
    home = _private_home(procctl)
    victim, before = _victim(tmp_path, "victim")
    (home / name).symlink_to(victim)
    foreground, background = procctl.many(("agent", "run"), ("agent", "start"))
    for result in (foreground, background):
        _one_error(result, 4, f"{home / name} is a symbolic link; procctl does not use it")
    assert _state(victim) == before
    assert not (home / "agent.sock").exists()
    assert (home / name).is_symlink()


@pytest.mark.parametrize("name", ["procctl.db", "procctl.db-wal", "procctl.db-shm"])
def test_a_store_file_linked_outside_is_refused_by_the_agent_and_the_read_commands(
        procctl: Procctl, tmp_path: Path, name: str) -> None:
    home = _private_home(procctl)
    victim, before = _victim(tmp_path, "victim.db")
    (home / name).symlink_to(victim)
    if name != "procctl.db":  # the database itself is there; only its companion is a link
        (home / "procctl.db").touch(mode=0o600)
    started, listed, shown = procctl.many(("agent", "run"), ("list",), ("show", "abcd"))
    for result in (started, listed, shown):
        _one_error(result, 6, f"the store file {home / name} is a symbolic link")
    assert _state(victim) == before


@pytest.mark.parametrize("where", ["signals", "signals/processed", "signals/rejected"])
def test_a_signals_directory_linked_elsewhere_is_refused(
        procctl: Procctl, tmp_path: Path, where: str) -> None:
    home = _private_home(procctl)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if where != "signals":
        (home / "signals").mkdir(mode=0o700)
    (home / where).symlink_to(elsewhere, target_is_directory=True)
    _one_error(procctl("agent", "run"), 4, f"{home / where} is a symbolic link")
    assert list(elsewhere.iterdir()) == []


def test_a_home_file_that_others_may_write_is_refused(procctl: Procctl) -> None:
    home = _private_home(procctl)
    log = home / "agent.log"
    log.write_text("")
    os.chmod(log, 0o666)
    _one_error(procctl("agent", "run"), 4, f"{log} may be written by others (mode 0666)")
    assert log.read_text() == ""


@as_root
def test_a_home_prepared_by_another_user_is_refused_and_nothing_in_it_is_touched(
        procctl: Procctl, tmp_path: Path) -> None:
    """The attack: another user makes the home, with agent.lock and agent.log linked to
    files of the user who runs the agent."""
    home = procctl.home
    home.mkdir(mode=0o755)
    lock_victim, lock_before = _victim(tmp_path, "lock-victim")
    log_victim, log_before = _victim(tmp_path, "log-victim")
    (home / "agent.lock").symlink_to(lock_victim)
    (home / "agent.log").symlink_to(log_victim)
    for path in (home, home / "agent.lock", home / "agent.log"):
        os.lchown(path, NOBODY, NOBODY)
    foreground, background, configured = procctl.many(
        ("agent", "run"), ("agent", "start"), ("config", "set", "log_level", "debug"))
    for result in (foreground, background, configured):
        _one_error(result, 4, f"the home {home} belongs to uid {NOBODY}, not to this user")
    assert _state(lock_victim) == lock_before
    assert _state(log_victim) == log_before
    info = home.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOBODY, 0o755), "home changed"
    assert sorted(p.name for p in home.iterdir()) == ["agent.lock", "agent.log"]


@as_root
def test_a_file_of_another_user_in_our_home_is_refused(procctl: Procctl) -> None:
    home = _private_home(procctl)
    config = home / "config.toml"
    config.write_text('log_level = "debug"\n')
    os.chown(config, NOBODY, NOBODY)
    _one_error(procctl("agent", "run"), 4,
               f"{config} belongs to uid {NOBODY}, not to this user")


@as_root
def test_a_store_of_another_user_is_not_read(procctl: Procctl) -> None:
    home = _private_home(procctl)
    db = home / "procctl.db"
    db.write_bytes(b"")
    os.chown(db, NOBODY, NOBODY)
    listed, paused = procctl.many(("list",), ("list-paused",))
    for result in (listed, paused):
        _one_error(result, 6, f"the store file {db} belongs to uid {NOBODY}")
    assert sorted(p.name for p in home.iterdir()) == ["procctl.db"], "files were made"


def test_a_home_of_our_own_is_made_private(procctl: Procctl) -> None:
    """A home the user made with a loose mode is ours: it is narrowed to 0700."""
    home = procctl.home
    home.mkdir()
    os.chmod(home, 0o775)
    procctl.ok("agent", "start")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("agent.lock", "agent.log", "agent.out", "procctl.db"):
        info = (home / name).lstat()
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600, name


# -- --home mistakes -----------------------------------------------------------------------


def test_a_home_that_is_a_file_is_a_usage_error_naming_it(
        procctl: Procctl, tmp_path: Path) -> None:
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    sample = Path(__file__).resolve().parents[2] / "samples" / "hello.toml"
    results = procctl.many(
        ("--home", a_file, "run", sample), ("--home", a_file, "list"),
        ("--home", a_file, "agent", "start"), ("--home", a_file, "show", "abcd"),
        ("--home", a_file / "sub", "list"), ("--home", a_file / "sub" / "deeper", "run", sample))
    for result in results[:4]:
        _one_error(result, 2, f"the home {a_file} is not a directory")
    _one_error(results[4], 2, f"the home {a_file / 'sub'} cannot be made: {a_file} is a file")
    _one_error(results[5], 2, f"{a_file} is a file, not a directory")
    assert a_file.read_text() == "root:x:0:0\n"


def test_empty_listings_name_the_home_and_say_when_it_does_not_exist(
        procctl: Procctl, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-home"
    empty = tmp_path / "empty-home"
    empty.mkdir(mode=0o700)
    results = procctl.many(
        ("--home", missing, "list"), ("--home", missing, "list-paused"),
        ("--home", missing, "list", "--json"),
        ("--home", empty, "list", "--status", "failed"), ("--home", empty, "list-paused"))
    for result in results:
        assert result.code == 0, str(result)
    nowhere = f"No procctl home at {missing} (nothing has run there)."
    assert results[0].out.strip() == nowhere
    assert results[1].out.strip() == nowhere
    assert results[2].json() == [] and nowhere in results[2].err
    assert results[3].out.strip() == f"No instances in home {empty} (status failed)."
    assert results[4].out.strip() == f"No paused instances in home {empty}."
    assert not missing.exists(), "reading must not create a home"
