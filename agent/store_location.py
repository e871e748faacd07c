"""Where a home's store is: PROCCTL_STORE_URL when set, else the home's `store_url`
setting, else the SQLite file in the home.

The environment's value may carry a password (it is the user's own environment, like
PGPASSWORD); config.toml's never does (agent/config.py refuses it). Messages show the
location through `describe`, which hides any password.

Read commands call this on every run: a config.toml that does not mention store_url is
not parsed (no TOML parser or error classes imported), so `procctl list` on SQLite
starts as fast as before.
"""

from __future__ import annotations

import os
from typing import Any

from procctl.agent.paths import HomePaths

STORE_URL_ENV = "PROCCTL_STORE_URL"


def store_url(paths: HomePaths, settings: dict[str, Any] | None = None) -> str | None:
    """The PostgreSQL location of the home's store, or None for SQLite at `paths.db`.
    `settings`: the home's settings when the caller has read them already.

    UsageError for an invalid PROCCTL_STORE_URL (the message hides any password), or a
    config.toml that cannot be read."""
    env = os.environ.get(STORE_URL_ENV, "")
    if env.strip():
        from procctl.store import urls

        problem = urls.problem(env)
        if problem is not None:
            from procctl.agent.errors import UsageError

            raise UsageError(f"{STORE_URL_ENV} is not a PostgreSQL location: {problem}",
                             hint="set it to a URL such as postgresql://user@host/dbname or "
                                  "to service=NAME, or unset it to use the home's store")
        return env
    if settings is None:
        settings = _settings(paths)
    value = settings.get("store_url") or ""
    return str(value) if value else None


def describe(paths: HomePaths, settings: dict[str, Any] | None = None) -> str:
    """The store's location for messages: the redacted URL, or the SQLite file."""
    url = store_url(paths, settings)
    if url is None:
        return str(paths.db)
    from procctl.store.urls import redacted

    return redacted(url)


def _settings(paths: HomePaths) -> dict[str, Any]:
    """The home's settings as far as the location needs them: a config.toml that does
    not name store_url is read, not parsed. Only a file that names it, or one the quick
    look does not like (a link, another user's, not UTF-8...), goes through
    `load_config`, which reads it with every check and says what is wrong."""
    try:
        fd = os.open(paths.config, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError:
        fd = None
    if fd is not None:
        from procctl.store.files import problem_with

        with os.fdopen(fd, "rb") as handle:
            if problem_with(os.fstat(handle.fileno())) is None:
                text = handle.read()
                if b"store_url" not in text:
                    return {}
    from procctl.agent.config import load_config

    return load_config(paths.config)
