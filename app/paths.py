"""Where SpareCycles keeps its config, state and logs.

The folders come from platformdirs; ``SPARECYCLES_HOME`` puts all three under one folder, which
is how tests isolate an agent and how a portable install keeps everything together. Nothing is
created at import time: :meth:`AppPaths.ensure` makes the folders when a process needs them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_VARIABLE = "SPARECYCLES_HOME"
APP_NAME = "sparecycles"


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    state_dir: Path
    log_dir: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AppPaths:
        environ = os.environ if environ is None else environ
        home = environ.get(HOME_VARIABLE)
        if home:
            root = Path(home).expanduser().resolve()
            return cls(config_dir=root / "config", state_dir=root / "state", log_dir=root / "logs")
        import platformdirs

        dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
        return cls(
            config_dir=Path(dirs.user_config_dir),
            state_dir=Path(dirs.user_state_dir),
            log_dir=Path(dirs.user_log_dir),
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def agent_lock_file(self) -> Path:
        """Created exclusively by the running agent; records its PID, port and API token (0600)."""
        return self.state_dir / "agent.lock"

    @property
    def agent_log_file(self) -> Path:
        return self.log_dir / "agent.log"

    def ensure(self) -> None:
        for folder in (self.config_dir, self.state_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
