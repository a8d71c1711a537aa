"""Where the engine keeps its state.

Every module takes an ``EngineConfig`` and owns one subdirectory of ``root``
(``content/``, ``images/``, ``layers/``, ``containers/``...). Runtime state that
must not survive a reboot (sockets, runc state) lives under ``run_root``, which is
kept short because unix socket paths are limited to 108 bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = "/var/lib/berth"
DEFAULT_RUN_ROOT = "/run/berth"


@dataclass(frozen=True)
class EngineConfig:
    root: Path
    run_root: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EngineConfig:
        env = os.environ if environ is None else environ
        return cls(
            root=Path(env.get("BERTH_ENGINE_ROOT", DEFAULT_ROOT)),
            run_root=Path(env.get("BERTH_ENGINE_RUN", DEFAULT_RUN_ROOT)),
        )

    def subdir(self, name: str) -> Path:
        """Return ``root/name``, created if missing."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run_subdir(self, name: str) -> Path:
        path = self.run_root / name
        path.mkdir(parents=True, exist_ok=True)
        return path
