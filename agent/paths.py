"""Where an agent's files live. Everything sits in one home directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

HOME_ENV = "PROCCTL_HOME"


def default_home() -> Path:
    """PROCCTL_HOME, else the per-user state directory (e.g. ~/.local/state/procctl)."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
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
        """Create the home, private to its owner."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
