"""The agent's settings, read from `<home>/config.toml`. Every key has a default."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from procctl.agent.atomic import write_bytes_atomically
from procctl.agent.durations import parse_duration
from procctl.agent.errors import UsageError
from procctl.agent.homefiles import read_private


def _duration(value: Any) -> Any:
    parse_duration(value)
    return value


def _positive_duration(value: Any) -> Any:
    if parse_duration(value) <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return value


def _positive_int(value: Any) -> Any:
    number = int(value)
    if number <= 0 or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a positive whole number")
    return number


def _log_level(value: Any) -> Any:
    level = str(value).lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError(f"{value!r} is not one of debug, info, warning, error")
    return level


#: where passwords for the store go, in messages that refuse one
PASSWORD_PLACES = "~/.pgpass, PGPASSFILE or PGPASSWORD"
_POOL = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _store_url(value: Any) -> Any:
    """"" (SQLite in the home) or a PostgreSQL location without a password. The message
    never quotes the value: it may hold a secret."""
    from procctl.store import urls

    if not isinstance(value, str):
        raise ValueError("it must be text: a postgresql:// URL, key=value connection "
                         'settings such as service=NAME, or "" for SQLite in the home')
    if not value.strip():
        return ""
    if urls.has_password(value):
        raise ValueError(f"it holds a password; passwords go in {PASSWORD_PLACES}, "
                         "never in config.toml")
    problem = urls.problem(value)
    if problem is not None:
        raise ValueError(f"not a PostgreSQL location: {problem}")
    return value


def _pool(value: Any) -> Any:
    if not isinstance(value, str) or _POOL.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a pool name: 1 to 64 letters, digits, "
                         "'-', '_' or '.'")
    return value


def _lease(value: Any) -> Any:
    if parse_duration(value) < 1:
        raise ValueError(f"{value!r} is shorter than the shortest lease, 1s")
    return value


def _text(value: Any) -> Any:
    if not str(value).strip():
        raise ValueError("it must not be empty")
    return str(value)


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    check: Callable[[Any], Any]
    description: str


SETTINGS: tuple[Setting, ...] = (
    Setting("signals_dir", "signals", _text,
            "Directory watched for signal files; relative paths are under the home."),
    Setting("signal_buffer", "10m", _duration,
            "How long a signal with no paused instance yet is held pending."),
    Setting("signal_scan_interval", "5s", _duration,
            "How often the signals directory is rescanned besides watchdog events."),
    Setting("max_signal_bytes", 1_048_576, _positive_int,
            "Largest signal file accepted, in bytes."),
    Setting("shutdown_grace", "10s", _duration,
            "How long running steps get to finish when the agent is stopped."),
    Setting("retention", "30d", _duration,
            "How long finished instances are kept after they end (the agent purges "
            "older ones with their history); 0 keeps everything."),
    Setting("log_level", "info", _log_level, "Agent log level: debug, info, warning, error."),
    Setting("expression_timeout", "1s", _positive_duration,
            "How long one expression may run before its step fails."),
    Setting("expression_max_size", 1_000_000, _positive_int,
            "Largest value or text (in characters) one expression may build."),
    Setting("store_url", "", _store_url,
            "PostgreSQL store shared by agents (postgresql://... or service=NAME; no "
            "password: use ~/.pgpass). Empty: SQLite in the home. PROCCTL_STORE_URL "
            "overrides it."),
    Setting("pool", "default", _pool,
            "The label of this agent's pool of hosts (procctl agents shows it)."),
    Setting("lease", "30s", _lease,
            "How long an agent's claim on its instances lasts unless renewed; peers take "
            "them over after it runs out (at least 1s)."),
)
SETTINGS_BY_KEY = {setting.key: setting for setting in SETTINGS}


def _read(path: Path) -> dict[str, Any]:
    """The file's table ({} when there is none), opened without following a link and
    only when it is the user's own (see agent/homefiles.py)."""
    try:
        text = read_private(path)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                         hint="fix the file or remove it") from None
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}", hint="fix the file or remove it") from exc


def unknown_setting_hint(key: str) -> str:
    """The hint for a setting that does not exist: the closest names, and where the
    list is."""
    from difflib import get_close_matches

    close = get_close_matches(key.lower().replace("-", "_"), SETTINGS_BY_KEY, n=2,
                              cutoff=0.6)
    if close:
        return ("did you mean " + " or ".join(repr(name) for name in close)
                + "? procctl config show lists the settings")
    return "known settings: " + ", ".join(SETTINGS_BY_KEY)


def load_config(path: Path) -> dict[str, Any]:
    """Every setting, from the file where set, else its default. Bad files are refused."""
    values = {setting.key: setting.default for setting in SETTINGS}
    data = _read(path)
    for key, raw in data.items():
        setting = SETTINGS_BY_KEY.get(key)
        if setting is None:
            raise UsageError(f"{path}: unknown setting {key!r}",
                             hint=unknown_setting_hint(key))
        try:
            values[key] = setting.check(raw)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{path}: setting {key}: {exc}") from exc
    return values


def set_config_value(path: Path, key: str, raw: str) -> Any:
    """Check and write one setting; returns the stored value."""
    setting = SETTINGS_BY_KEY.get(key)
    if setting is None:
        raise UsageError(f"unknown setting {key!r}", hint=unknown_setting_hint(key))
    value: Any = raw
    if isinstance(setting.default, int):
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"setting {key}: {raw!r} is not a whole number") from None
    try:
        value = setting.check(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"setting {key}: {exc}") from exc
    data = _read(path)
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, tomli_w.dumps(data).encode())
    return value
