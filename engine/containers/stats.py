"""Resource usage of running containers from their cgroups (v1 here), as ``docker stats``.

CPU % = (delta of the container's cpuacct.usage / delta of the system's CPU time)
x online CPUs x 100, where the system time is the sum of the first 7 fields of the
``cpu`` line of /proc/stat in nanoseconds (docker/cli stats_helpers.go, moby
collector_unix.go). Memory usage excludes the inactive page cache (total_inactive_file).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from engine.containers.manager import Container, Containers
from engine.errors import Conflict
from engine.runtime.runc import cgroup_dir

NO_LIMIT = 1 << 62  # v1 reports "no limit" as a huge number


def system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                fields = [int(x) for x in line.split()[1:8]]
                return sum(fields) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return 0


def _read_int(path: Path, default: int = 0) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _read_kv(path: Path) -> dict[str, int]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
    except OSError:
        pass
    return out


def _network(pid: int) -> dict[str, dict[str, int]]:
    networks = {}
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return networks
    for line in lines:
        name, _, rest = line.partition(":")
        fields = [int(x) for x in rest.split()]
        networks[name.strip()] = {"rx_bytes": fields[0], "rx_packets": fields[1],
                                  "tx_bytes": fields[8], "tx_packets": fields[9]}
    return networks


def _blkio(container_id: str) -> tuple[int, int]:
    read = write = 0
    path = cgroup_dir("blkio", container_id) / "blkio.throttle.io_service_bytes_recursive"
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "Read":
                read += int(parts[2])
            elif len(parts) == 3 and parts[1] == "Write":
                write += int(parts[2])
    except OSError:
        pass
    return read, write


def sample(container: Container) -> dict:
    """One raw reading, Docker API-shaped (``cpu_stats``, ``memory_stats``, ...)."""
    cid = container.id
    cpuacct = cgroup_dir("cpuacct", cid)
    memory = cgroup_dir("memory", cid)
    percpu = [int(x) for x in (cpuacct / "cpuacct.usage_percpu").read_text().split()] \
        if (cpuacct / "cpuacct.usage_percpu").exists() else []
    mem_stat = _read_kv(memory / "memory.stat")
    limit = _read_int(memory / "memory.limit_in_bytes", NO_LIMIT)
    if limit >= NO_LIMIT:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    blk_read, blk_write = _blkio(cid)
    return {
        "id": cid,
        "name": "/" + container.name,
        "read": time.time(),
        "cpu_stats": {
            "cpu_usage": {"total_usage": _read_int(cpuacct / "cpuacct.usage"), "percpu_usage": percpu},
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": os.cpu_count() or len(percpu) or 1,
        },
        "memory_stats": {
            "usage": _read_int(memory / "memory.usage_in_bytes"),
            "max_usage": _read_int(memory / "memory.max_usage_in_bytes"),
            "limit": limit,
            "stats": mem_stat,
            "failcnt": _read_int(memory / "memory.failcnt"),
        },
        "pids_stats": {"current": _read_int(cgroup_dir("pids", cid) / "pids.current"),
                       "limit": _read_int(cgroup_dir("pids", cid) / "pids.max", 0)},
        "blkio": {"read_bytes": blk_read, "write_bytes": blk_write},
        "networks": _network(container.state.get("Pid") or 0),
    }


def summarize(current: dict, previous: dict | None) -> dict:
    """The ``docker stats`` columns from two readings."""
    cpu_percent = 0.0
    if previous is not None:
        cpu_delta = current["cpu_stats"]["cpu_usage"]["total_usage"] - \
            previous["cpu_stats"]["cpu_usage"]["total_usage"]
        system_delta = current["cpu_stats"]["system_cpu_usage"] - previous["cpu_stats"]["system_cpu_usage"]
        if cpu_delta > 0 and system_delta > 0:
            cpu_percent = cpu_delta / system_delta * current["cpu_stats"]["online_cpus"] * 100.0
    mem = current["memory_stats"]
    usage = mem["usage"] - mem["stats"].get("total_inactive_file", 0)
    usage = max(usage, 0)
    networks = current["networks"].values()
    return {
        "id": current["id"],
        "name": current["name"].lstrip("/"),
        "cpu_percent": round(cpu_percent, 2),
        "memory_usage": usage,
        "memory_limit": mem["limit"],
        "memory_percent": round(usage / mem["limit"] * 100.0, 2) if mem["limit"] else 0.0,
        "net_rx": sum(n["rx_bytes"] for n in networks),
        "net_tx": sum(n["tx_bytes"] for n in networks),
        "block_read": current["blkio"]["read_bytes"],
        "block_write": current["blkio"]["write_bytes"],
        "pids": current["pids_stats"]["current"],
        "time": current["read"],
    }


def stream(containers: Containers, ref: str, interval: float = 1.0, count: int | None = None) -> Iterator[dict]:
    """A summary per ``interval`` while the container runs (``count`` of them if given).
    The first one is computed over a short first interval, as ``docker stats --no-stream``."""
    container = containers.get(ref)
    if container.status not in ("running", "paused"):
        raise Conflict(f"Container {container.name} is not running")
    previous = sample(container)
    time.sleep(min(interval, 0.5) if count == 1 else interval)
    produced = 0
    while count is None or produced < count:
        container = containers.get(container.id)
        if container.status not in ("running", "paused"):
            return
        try:
            current = sample(container)
        except OSError:
            return  # the cgroup went away: the container stopped
        yield summarize(current, previous)
        produced += 1
        previous = current
        if count is None or produced < count:
            time.sleep(interval)


def once(containers: Containers, ref: str) -> dict:
    return next(stream(containers, ref, count=1))
