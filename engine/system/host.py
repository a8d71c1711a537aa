"""Facts about the host the engine runs on, found by probing rather than assumed.

``python -m engine info`` prints them and the console's dashboard shows them.
The runtime probe really starts a container, because a runtime that is installed
may still refuse to work (Debian's crun 1.8 refuses cgroups in hybrid mode).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from engine.config import EngineConfig

RUNTIME_CANDIDATES = ("runc", "crun")
STATIC_BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")


@dataclass
class RuntimeFacts:
    name: str
    path: str | None
    version: str | None
    works: bool
    error: str | None = None


def cgroup_mode() -> str:
    """'v2' (unified), 'hybrid' (v1 controllers plus a v2 mount) or 'v1'."""
    root = Path("/sys/fs/cgroup")
    if _fs_type(root) == "cgroup2fs":
        return "v2"
    if (root / "unified").is_dir() and _fs_type(root / "unified") == "cgroup2fs":
        return "hybrid"
    return "v1"


def _fs_type(path: Path) -> str:
    try:
        out = subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _runtime_version(path: str) -> str | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = out.stdout.splitlines()[0] if out.stdout else ""
    # "runc version 1.1.5+ds1" / "crun version 1.8.1"
    return first.split("version", 1)[-1].strip() or None


def _static_busybox() -> str | None:
    for candidate in STATIC_BUSYBOX_PATHS:
        try:
            with open(candidate, "rb") as f:
                head = f.read(4096)
        except OSError:
            continue
        # A static binary has no PT_INTERP, hence no dynamic loader path in it.
        if head.startswith(b"\x7fELF") and b"ld-linux" not in head:
            return candidate
    return None


def _probe_bundle(workdir: Path, busybox: str) -> Path:
    rootfs = workdir / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    config = {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0},
                    "args": ["/bin/busybox", "true"], "cwd": "/",
                    "env": ["PATH=/bin"]},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "probe",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]},
    }
    (workdir / "config.json").write_text(json.dumps(config))
    return workdir


def probe_runtime(name: str) -> RuntimeFacts:
    """Run ``true`` in a throwaway container with the runtime ``name``."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        return RuntimeFacts(name, None, None, False, "not installed")
    version = _runtime_version(path)
    busybox = _static_busybox()
    if busybox is None:
        return RuntimeFacts(name, path, version, False, "no static busybox to probe with")
    with tempfile.TemporaryDirectory(prefix="berth-probe-") as tmp:
        bundle = _probe_bundle(Path(tmp), busybox)
        state_root = Path(tmp) / "state"
        container_id = f"berth-probe-{os.getpid()}"
        try:
            out = subprocess.run(
                [path, "--root", str(state_root), "run", "--bundle", str(bundle), container_id],
                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return RuntimeFacts(name, path, version, False, str(exc))
        finally:
            subprocess.run([path, "--root", str(state_root), "delete", "--force", container_id],
                           capture_output=True, timeout=30)
    if out.returncode != 0:
        message = (out.stderr or out.stdout).strip().splitlines()
        return RuntimeFacts(name, path, version, False, message[-1] if message else "failed")
    return RuntimeFacts(name, path, version, True)


@lru_cache(maxsize=1)
def probe_runtimes() -> tuple[RuntimeFacts, ...]:
    return tuple(probe_runtime(name) for name in RUNTIME_CANDIDATES)


def preferred_runtime() -> RuntimeFacts | None:
    """The first runtime that really works here, runc before crun."""
    return next((r for r in probe_runtimes() if r.works), None)


def overlay_usable(directory: Path) -> tuple[bool, str | None]:
    """Mount a tiny overlay inside ``directory`` to learn whether overlayfs works there."""
    try:
        filesystems = Path("/proc/filesystems").read_text()
    except OSError:
        filesystems = ""
    if "overlay" not in filesystems:
        subprocess.run(["modprobe", "overlay"], capture_output=True)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".overlay-probe-", dir=directory) as tmp:
        parts = {name: Path(tmp) / name for name in ("lower", "upper", "work", "merged")}
        for part in parts.values():
            part.mkdir()
        options = f"lowerdir={parts['lower']},upperdir={parts['upper']},workdir={parts['work']}"
        out = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(parts["merged"])],
            capture_output=True, text=True,
        )
        if out.returncode != 0:
            return False, out.stderr.strip() or "mount failed"
        subprocess.run(["umount", str(parts["merged"])], capture_output=True)
    return True, None


def facts(config: EngineConfig) -> dict:
    """Everything ``engine info`` reports, as plain JSON-able data."""
    config.root.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(config.root)
    overlay_ok, overlay_error = overlay_usable(config.root)
    runtimes = [asdict(r) for r in probe_runtimes()]
    chosen = preferred_runtime()
    return {
        "runtime": chosen.name if chosen else None,
        "runtime_version": chosen.version if chosen else None,
        "runtimes": runtimes,
        "overlayfs": overlay_ok,
        "overlayfs_error": overlay_error,
        "storage_driver": "overlay" if overlay_ok else "copy",
        "storage_root": str(config.root),
        "storage_free_bytes": usage.free,
        "storage_total_bytes": usage.total,
        "kernel": platform.release(),
        "architecture": platform.machine(),
        "cgroup_mode": cgroup_mode(),
    }
