"""Where an agent's files live. Everything sits in one home directory, which belongs
to the user that runs the agent: `ensure` makes it and checks it and the files in it.

Every procctl command resolves its home here, `procctl --help` and `list` included:
what only `ensure`, `check` or an error needs (the config reader, the store's file
checks, platformdirs, the errors) is imported where it is used, so resolving a home
costs no imports (see bench/cli_startup.py).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from procctl.agent.errors import UsageError

HOME_ENV = "PROCCTL_HOME"


def default_home() -> Path:
    """PROCCTL_HOME, else the per-user state directory (e.g. ~/.local/state/procctl)."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir("procctl", appauthor=False))


@dataclass(frozen=True)
class HomePaths:
    home: Path

    @classmethod
    def resolve(cls, home: Path | str | None) -> HomePaths:
        return cls(Path(home).expanduser().absolute() if home else default_home().absolute())

    @property
    def db(self) -> Path:
        return self.home / "procctl.db"

    @property
    def socket(self) -> Path:
        return self.home / "agent.sock"

    @property
    def lock(self) -> Path:
        return self.home / "agent.lock"

    @property
    def log(self) -> Path:
        return self.home / "agent.log"

    @property
    def stdout_log(self) -> Path:
        """Where a background agent's stray stdout/stderr goes (start-up crashes)."""
        return self.home / "agent.out"

    @property
    def config(self) -> Path:
        return self.home / "config.toml"

    def signals_dir(self, setting: str = "signals") -> Path:
        """The signals directory: the `signals_dir` setting, relative to the home."""
        path = Path(setting).expanduser()
        return path if path.is_absolute() else self.home / path

    def ensure(self) -> None:
        """Create the home if it is missing, private to its owner, and check it and
        every file the agent keeps in it (see `check`)."""
        from procctl.agent.errors import UsageError

        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise self._not_a_directory() from None
        except OSError as exc:
            raise UsageError(f"cannot create the home {self.home}: {exc.strerror}",
                             hint="choose another --home (or PROCCTL_HOME)") from None
        self.check()

    def check_path(self) -> None:
        """UsageError when the path cannot be a home: it, or a directory above it, is a
        file. (The CLI checks this for every command that uses the home.)"""
        self.exists()

    def exists(self) -> bool:
        """Whether the home exists (a path that is not a directory is a usage error)."""
        try:
            info = os.stat(self.home)
        except NotADirectoryError:  # under a file
            raise self._not_a_directory() from None
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(info.st_mode):
            raise self._not_a_directory()
        return True

    def check(self) -> None:
        """Refuse a home that belongs to another user (UnsafeHome), and tighten one of
        ours to mode 0700; then refuse every file the agent uses that is a symbolic
        link, belongs to another user or may be written by others. Files that are not
        there yet are fine: the agent makes them, privately."""
        from procctl.agent.errors import UnsafeHome, UsageError
        from procctl.agent.homefiles import HINT
        from procctl.agent.signals import PROCESSED, REJECTED

        if not self.exists():
            raise UsageError(f"the home {self.home} does not exist")
        info = os.stat(self.home)  # a home named through a link is the user's choice
        if info.st_uid != os.geteuid():
            raise UnsafeHome(
                f"the home {self.home} belongs to uid {info.st_uid}, not to this user "
                f"(uid {os.geteuid()}); procctl does not use it", hint=HINT)
        if stat.S_IMODE(info.st_mode) != 0o700:
            # Ours: nobody else can add files from now on, and what someone else may
            # have put here already is refused below.
            os.chmod(self.home, 0o700)
        self._check_entries([(self.config, "file")])
        signals = self.signals_dir(_signals_setting(self.config))
        self._check_entries([
            (self.lock, "file"), (self.log, "file"), (self.stdout_log, "file"),
            (self.socket, "socket"),
            # procctl.db and its -wal and -shm: the store checks them as it opens them.
            (signals, "directory"), (signals / PROCESSED, "directory"),
            (signals / REJECTED, "directory"),
        ])

    def _check_entries(self, entries: list[tuple[Path, str]]) -> None:
        from procctl.agent.homefiles import refuse
        from procctl.store.files import unsafe_reason

        for path, kind in entries:
            reason = unsafe_reason(path, kind)
            if reason is not None:
                raise refuse(path, reason)

    def _not_a_directory(self) -> UsageError:
        from procctl.agent.errors import UsageError

        blocking = next((p for p in (self.home, *self.home.parents)
                         if p.exists() and not p.is_dir()), self.home)
        what = ("is not a directory" if blocking == self.home
                else f"cannot be made: {blocking} is a file, not a directory")
        return UsageError(f"the home {self.home} {what}",
                          hint="--home (or PROCCTL_HOME) names the directory where the agent "
                               "keeps its files; choose a directory, or a path that does "
                               "not exist yet")


def _signals_setting(config: Path) -> str:
    """The signals_dir setting; the default when config.toml cannot be read (the agent
    refuses such a file itself, with its own message)."""
    from procctl.agent.config import load_config
    from procctl.agent.errors import UsageError

    try:
        return str(load_config(config)["signals_dir"])
    except UsageError:
        return "signals"
