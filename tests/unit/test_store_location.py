"""Where a home's store is (agent/store_location.py) and the settings that say so
(agent/config.py): PROCCTL_STORE_URL over the home's store_url, SQLite when neither is
set, passwords refused in config.toml (by `config set` and by `load_config`, the file left
as it was) but allowed in the environment and never shown; pool and lease checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from procctl.agent.config import load_config, set_config_value
from procctl.agent.errors import UnsafeHome, UsageError
from procctl.agent.paths import HomePaths
from procctl.agent.store_location import STORE_URL_ENV, describe, store_url

SERVER = "postgresql://procctl@db.example.com/procctl"
PASSWORDS = ("postgresql://procctl:hunter2@db/procctl",
             "postgresql://db/procctl?password=hunter2",
             "host=db dbname=procctl password=hunter2",
             "host=db password='hunter2 with spaces'",
             "service=procctl sslpassword=hunter2")


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HomePaths:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    home = HomePaths.resolve(tmp_path / "home")
    home.ensure()
    return home


def test_no_setting_and_no_environment_is_the_sqlite_file(paths: HomePaths) -> None:
    assert store_url(paths) is None
    assert describe(paths) == str(paths.db)
    set_config_value(paths.config, "log_level", "debug")  # a file that names no store
    assert store_url(paths) is None


def test_the_setting_names_the_server(paths: HomePaths) -> None:
    assert set_config_value(paths.config, "store_url", SERVER) == SERVER
    assert store_url(paths) == SERVER
    assert describe(paths) == SERVER
    assert load_config(paths.config)["store_url"] == SERVER
    set_config_value(paths.config, "store_url", "")  # back to SQLite
    assert store_url(paths) is None


def test_the_environment_overrides_the_setting(paths: HomePaths,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    set_config_value(paths.config, "store_url", SERVER)
    monkeypatch.setenv(STORE_URL_ENV, "service=other")
    assert store_url(paths) == "service=other"
    monkeypatch.setenv(STORE_URL_ENV, "")  # empty: not set
    assert store_url(paths) == SERVER


def test_the_environment_names_a_server_for_a_home_with_no_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORE_URL_ENV, SERVER)
    assert store_url(HomePaths.resolve(tmp_path / "nowhere")) == SERVER


@pytest.mark.parametrize("url", PASSWORDS)
def test_the_environment_may_hold_a_password_but_it_is_never_shown(
        paths: HomePaths, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv(STORE_URL_ENV, url)
    assert store_url(paths) == url
    shown = describe(paths)
    assert "hunter2" not in shown and "***" in shown, shown


def test_an_invalid_environment_value_is_refused_without_quoting_it(
        paths: HomePaths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORE_URL_ENV, "postgresql://app:hunter2@db:port/procctl")
    with pytest.raises(UsageError) as raised:
        store_url(paths)
    assert raised.value.message == (f"{STORE_URL_ENV} is not a PostgreSQL location: host 1: "
                                    "the port is not a number from 1 to 65535")


@pytest.mark.parametrize("url", PASSWORDS)
def test_config_set_refuses_a_password_and_writes_nothing(paths: HomePaths, url: str) -> None:
    set_config_value(paths.config, "pool", "eu-west")
    before = paths.config.read_bytes()
    with pytest.raises(UsageError) as raised:
        set_config_value(paths.config, "store_url", url)
    assert raised.value.message == (
        "setting store_url: it holds a password; passwords go in ~/.pgpass, PGPASSFILE or "
        "PGPASSWORD, never in config.toml")
    assert paths.config.read_bytes() == before


@pytest.mark.parametrize("url", PASSWORDS)
def test_load_config_refuses_a_password_found_in_the_file(paths: HomePaths, url: str) -> None:
    quoted = url.replace("\\", "\\\\").replace('"', '\\"')
    paths.config.write_text(f'store_url = "{quoted}"\n', encoding="utf-8")
    before = paths.config.read_bytes()
    with pytest.raises(UsageError) as raised:
        load_config(paths.config)
    message = raised.value.message
    assert message.startswith(f"{paths.config}: setting store_url: it holds a password;")
    assert "hunter2" not in message and "\n" not in message
    with pytest.raises(UsageError):  # the read commands find their store through it
        store_url(paths)
    assert paths.config.read_bytes() == before
    set_config_value(paths.config, "store_url", "")  # how the user puts it right
    assert "hunter2" not in paths.config.read_text() and store_url(paths) is None


@pytest.mark.parametrize(("url", "says"), [
    ("mysql://db/procctl", "not a PostgreSQL location: it is neither a PostgreSQL URL"),
    ("postgresql://db/procctl?sslmod=require",
     "not a PostgreSQL location: 'sslmod' is not a PostgreSQL connection setting"),
])
def test_config_set_refuses_an_invalid_url_saying_what_is_wrong(
        paths: HomePaths, url: str, says: str) -> None:
    with pytest.raises(UsageError) as raised:
        set_config_value(paths.config, "store_url", url)
    assert raised.value.message.startswith(f"setting store_url: {says}"), raised.value.message
    assert not paths.config.exists()


def test_pool_and_lease_have_defaults_and_are_checked(paths: HomePaths) -> None:
    defaults = load_config(paths.config)
    assert (defaults["store_url"], defaults["pool"], defaults["lease"]) == ("", "default", "30s")
    assert set_config_value(paths.config, "pool", "eu-west.2_a") == "eu-west.2_a"
    assert set_config_value(paths.config, "lease", "1s") == "1s"
    for key, bad, says in (("pool", "eu west", "is not a pool name"),
                           ("pool", "p" * 65, "is not a pool name"),
                           ("pool", "", "is not a pool name"),
                           ("lease", "500ms", "shorter than the shortest lease, 1s"),
                           ("lease", "0", "shorter than the shortest lease"),
                           ("lease", "soon", "is not a duration")):
        with pytest.raises(UsageError, match=says):
            set_config_value(paths.config, key, bad)
    assert load_config(paths.config) == {**defaults, "pool": "eu-west.2_a", "lease": "1s"}


def test_a_config_that_does_not_name_store_url_is_not_parsed(paths: HomePaths) -> None:
    paths.config.write_text("log_level = [broken\n", encoding="utf-8")
    assert store_url(paths) is None  # read commands on SQLite do not trip over it
    paths.config.write_text('store_url = "service=x\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"config\.toml"):
        store_url(paths)


def test_a_config_that_is_a_link_is_refused(paths: HomePaths, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('log_level = "debug"\n', encoding="utf-8")
    paths.config.symlink_to(elsewhere)
    with pytest.raises(UnsafeHome, match="symbolic link"):
        store_url(paths)
