"""The fault suite's engine: a root on a tmpfs of a few MiB, so that a test can fill the
disk (one file takes what is left) and give the space back, with real runc containers.

Everything is undone afterwards: containers and monitors killed, mounts unmounted, the
directories removed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.config import EngineConfig
from tests.support.containers import cleanup, make_engine
from tests.support.faults_restore import check_clean

TMPFS_SIZE = "24m"
REPO = Path(__file__).resolve().parent.parent.parent


@dataclass
class Disk:
    """The tmpfs under the engine root: ``fill()`` leaves no byte free, ``free()`` gives it back."""

    mount: Path

    @property
    def filler(self) -> Path:
        return self.mount / "filler"

    def available(self) -> int:
        st = os.statvfs(self.mount)
        return st.f_bavail * st.f_frsize

    def fill(self) -> None:
        with open(self.filler, "ab") as f:
            chunk = b"\0" * (1 << 20)
            while True:
                try:
                    f.write(chunk)
                    f.flush()
                except OSError:
                    break
            # the last pages, a byte at a time is too slow: halve until nothing fits
            size = 1 << 19
            while size:
                try:
                    os.write(f.fileno(), b"\0" * size)
                except OSError:
                    size //= 2
        assert self.available() == 0

    def leave(self, size: int) -> None:
        """Full, but for about ``size`` bytes (rounded up to whole pages)."""
        self.fill()
        os.truncate(self.filler, self.filler.stat().st_size - size - 4096)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@dataclass
class FullEngine:
    engine: object  # engine.containers.manager.Containers
    config: EngineConfig
    disk: Disk
    outside: Path  # a directory off the tmpfs, for containers to bind-mount (``-v OUTSIDE:/out``)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``python -m engine ARGS`` in its own process, on this engine's roots."""
        env = dict(os.environ, BERTH_ENGINE_CLI_SERVER="0", PYTHONPATH=str(REPO))
        return subprocess.run([sys.executable, "-m", "engine", "--root", str(self.config.root),
                               "--run-root", str(self.config.run_root), *args],
                              capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


@pytest.fixture
def full_engine():
    """A busybox engine whose root is a fresh tmpfs (``disk`` fills and frees it)."""
    base = Path(tempfile.mkdtemp(prefix="bf-", dir="/tmp"))
    root = base / "r"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs", str(root)],
                   check=True)
    config = EngineConfig(root=root, run_root=base / "x")
    try:
        engine, _ = make_engine(config)
        (base / "out").mkdir()
        yield FullEngine(engine, config, Disk(root), base / "out")
        Disk(root).free()
        check_clean(config)  # every scenario leaves a store that passes the consistency check
    finally:
        Disk(root).free()
        # cleanup() unmounts whatever is under base (overlays, then the tmpfs) and removes it
        from tests.support.containers import Containers

        cleanup(Containers(config))
