"""Helpers for container tests: a short-path engine root, a busybox image, and cleanup
that leaves nothing behind (monitors, runc state, mounts, cgroups, directories).

Unix socket paths are limited to 108 bytes, so roots live under ``/tmp/bt-*``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from engine.base.proc import process_start_time
from engine.config import EngineConfig
from engine.containers.manager import Containers
from engine.engine import Engine
from engine.supervisor.servers import stop_servers
from tests.support import imagebuilder as ib

CGROUP_ROOT = Path("/sys/fs/cgroup")


def new_config() -> EngineConfig:
    base = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
    return EngineConfig(root=base / "r", run_root=base / "x")


def make_engine(config: EngineConfig | None = None, **image_config) -> tuple[Containers, object]:
    """A container store plus a registered busybox image ``test/busybox:latest``."""
    config = config or new_config()
    eng = Engine(config)
    eng.layers, eng.snapshots  # noqa: B018  (made now, as tests expect their directories)
    image = ib.busybox_image(eng.images, **image_config)
    return eng.containers, image


def _kill_pid(pid: int, start) -> None:
    if pid and process_start_time(pid) == start:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def cleanup(engine: Containers) -> None:
    """Kill and remove every container and monitor under this engine root, then the root."""
    config = engine.config
    stop_servers(config.run_root)
    runc = engine.runtime.base() if (config.run_root / "runtime.json").exists() else None
    for cdir in list((config.root / "containers").glob("*")) if (config.root / "containers").exists() else []:
        state_file = cdir / "state.json"
        if not state_file.exists():
            continue
        state = json.loads(state_file.read_text())
        _kill_pid(state.get("MonitorPid"), state.get("MonitorStart"))
        if runc:
            subprocess.run(runc + ["kill", "--all", cdir.name, "KILL"], capture_output=True)
    time.sleep(0.05)
    from tests.support.networks import remove_networks

    remove_networks(config)  # bridges, veths, namespaces and iptables rules live outside the root
    for cdir in list((config.root / "containers").glob("*")) if (config.root / "containers").exists() else []:
        if runc and (cdir / "config.json").exists():
            subprocess.run(runc + ["delete", "--force", cdir.name], capture_output=True)
        try:
            engine.snapshots.remove(cdir.name)
        except Exception:
            pass
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4]
        if mount_point.startswith(str(config.root.parent)):
            subprocess.run(["umount", "-l", mount_point], capture_output=True)
    shutil.rmtree(config.root.parent, ignore_errors=True)


def leftovers(engine: Containers, container_id: str) -> list[str]:
    """What a removed (or never created) container could have left behind."""
    found = []
    config = engine.config
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if container_id in line.split()[4]:
            found.append(f"mount {line.split()[4]}")
    if (engine.runtime.root / container_id).exists():
        found.append("runc state")
    for controller in ("memory", "cpu", "pids", "cpuacct", "blkio", "freezer", "devices"):
        if (CGROUP_ROOT / controller / "berth" / container_id).exists():
            found.append(f"cgroup {controller}")
    if (config.root / "containers" / container_id).exists():
        found.append("container directory")
    return found


def all_leftovers(engine: Containers) -> list[str]:
    """Leftovers of any container: containers dir entries, runc state, mounts under the root."""
    found = []
    containers = engine.config.root / "containers"
    if containers.exists():
        found += [p.name for p in containers.iterdir() if p.name != "names"]
        found += [f"name {p.name}" for p in (containers / "names").iterdir()]
    runc_root = engine.config.run_root / "runc"
    if runc_root.exists():
        found += [f"runc {p.name}" for p in runc_root.iterdir()]
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4].startswith(str(engine.config.root)):
            found.append(f"mount {line.split()[4]}")
    return found


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
