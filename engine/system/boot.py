"""At host start: clear what the previous boot left, then start what should run.

``python -m engine boot`` (alias ``restore``), run once per boot by the systemd unit
``deploy/systemd/berth-engine-restore.service``. Idempotent: run again while containers
run, it touches only what is not running.

1. Containers recorded as running whose monitor and process are gone are recorded as
   exited (255, "monitor died"), as dockerd does after a crash.
2. Host objects of containers that do not run are removed: their network namespaces and
   veths (``Networks.teardown``), keepers that outlived them, the runtime's records and
   cgroups; endpoints and addresses of containers that no longer exist are dropped;
   iptables rules of bridges that are gone are deleted. Mounts under the root that
   belong to no snapshot are detached.
3. The garbage collector runs (blobs included: no pull runs at boot).
4. Containers are started as dockerd does at its start (``should_restore``): ``always``;
   ``unless-stopped`` unless a user stopped it; ``on-failure`` if its last exit was a
   failure, a user did not stop it and its retries are not used up; ``no`` never.
   Starting makes their namespaces, veths, bridges and iptables rules again and binds
   their published ports.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import EngineError, NotFound

ACTIVE = ("running", "paused", "restarting")


@dataclass
class BootReport:
    started: list[str] = field(default_factory=list)  # names
    failed: dict[str, str] = field(default_factory=dict)  # name -> error
    cleaned: list[str] = field(default_factory=list)  # what stale host state was removed
    reclaimed: int = 0


def should_restore(config: dict, state: dict) -> bool:
    """Docker's rule at daemon start for a container that is not running."""
    if state.get("Status") not in ("exited", "created") or state.get("StartedAt", "").startswith("0001"):
        return False  # never started: nothing to restore
    policy = (config.get("HostConfig") or {}).get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    stopped_by_user = bool(state.get("StoppedByUser"))
    if name == "always":
        return True
    if name == "unless-stopped":
        return not stopped_by_user
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        count = int(state.get("RestartCount") or 0)
        return not stopped_by_user and int(state.get("ExitCode") or 0) != 0 and (limit == 0 or count < limit)
    return False


def boot(config: EngineConfig) -> BootReport:
    from engine.containers.manager import Containers
    from engine.system import gc

    report = BootReport()
    if not config.root.is_dir():
        return report
    config.run_root.mkdir(parents=True, exist_ok=True)
    containers = Containers(config)
    existing = set(containers.ids())
    # 1 and 2, one container at a time under its operation lock: a start or a removal
    # made meanwhile by someone else is never undone half-way.
    for container_id in sorted(existing):
        with contextlib.suppress(EngineError, ValueError, OSError):
            report.cleaned += _clean_container(containers, container_id)
    report.cleaned += _clean_leftovers(containers, existing)
    report.cleaned += _clean_rules()
    report.cleaned += _clean_mounts(config)
    # 3. Space.
    report.reclaimed = gc.collect(config, blobs=True).reclaimed
    # 4. What should run again.
    for container_id in sorted(existing):
        try:
            container = containers.get(container_id)
            if container.status in ACTIVE or not should_restore(container.config, container.state):
                continue
            containers.start(container_id)
            report.started.append(container.name)
        except NotFound:
            continue
        except EngineError as exc:
            report.failed[container.name] = str(exc)
    return report


def _clean_container(containers, container_id: str) -> list[str]:
    """What a container that does not run still holds on the host: its runtime record,
    cgroups, network namespace, veths and keeper."""
    from engine.base.files import lock
    from engine.runtime.runc import cgroup_dir

    container = containers.get(container_id)
    cleaned = []
    with lock(str(container.dir / "op.lock")):
        container = containers.settle(container_id)  # a dead monitor's run is written down as ended
        if container.status in ACTIVE:
            return []
        if (containers.config.run_root / "runc" / container_id).exists():
            containers.runtime.delete(container_id, force=True)
            shutil.rmtree(containers.config.run_root / "runc" / container_id, ignore_errors=True)
            cleaned.append(f"runtime state of {container.name}")
        for controller in _controllers():
            path = cgroup_dir(controller, container_id)
            with contextlib.suppress(OSError):
                if path.is_dir():
                    _rmdir_tree(path)
                    cleaned.append(f"cgroup {controller} of {container.name}")
        nets = containers.networks
        ep = nets.endpoint(container_id) if nets is not None else None
        if ep is not None:
            from engine.net import networks as netmod

            if netmod.netns_exists(ep["Netns"]) or ep.get("Keeper") or ep.get("Bound") or \
                    any(netmod.link_exists(link["Veth"]) for link in ep["Networks"].values()):
                nets.stop_keeper(ep, timeout=2)
                nets.teardown(container_id)
                cleaned.append(f"network namespace and veths of {container.name}")
    return cleaned


def _clean_leftovers(containers, existing: set[str]) -> list[str]:
    """Runtime records, endpoints and addresses of containers that no longer exist."""
    cleaned = []
    runtime_root = containers.config.run_root / "runc"
    for entry in runtime_root.iterdir() if runtime_root.is_dir() else []:
        if entry.name not in existing and not (containers.root / entry.name).exists():
            containers.runtime.delete(entry.name, force=True)
            shutil.rmtree(entry, ignore_errors=True)
            cleaned.append(f"runtime state {entry.name[:12]}")
    nets = containers.networks
    if nets is None:
        return cleaned
    for path in sorted(nets.endpoints.glob("*.json")):
        cid = path.stem
        if cid in existing or (containers.root / cid).exists():
            continue
        ep = nets.endpoint(cid)
        if ep is not None:
            nets.stop_keeper(ep, timeout=2)
        nets.on_remove(cid)
        cleaned.append(f"endpoint of removed container {cid[:12]}")
    with nets._locked():
        for net in nets._records():
            gone = [cid for cid in net.get("Endpoints") or {}
                    if cid not in existing and not (containers.root / cid).exists()]
            for cid in gone:
                del net["Endpoints"][cid]
                cleaned.append(f"address of removed container {cid[:12]} on {net['Name']}")
            if gone:
                nets._save(net)
    return cleaned


def _controllers() -> list[str]:
    root = Path("/sys/fs/cgroup")
    try:
        return [p.name for p in root.iterdir() if (p / "berth").is_dir()]
    except OSError:
        return []


def _rmdir_tree(path: Path) -> None:
    """cgroup directories go with rmdir, children first (their files cannot be deleted)."""
    for child in path.iterdir():
        if child.is_dir():
            _rmdir_tree(child)
    path.rmdir()


def _clean_rules() -> list[str]:
    """iptables rules of bridges that are gone (a bridge that comes back with its network's
    next start gets its rules again). Any engine root's: a rule names its network by id
    only, and without its bridge it serves no root."""
    import re
    import shlex

    from engine.net import networks as netmod

    cleaned = []
    with netmod.host_lock():
        for table, chain in (("filter", netmod.CHAIN), ("nat", "POSTROUTING")):
            listing = netmod.iptables("-t", table, "-S", chain, check=False)
            for line in listing.stdout.splitlines() if listing.returncode == 0 else []:
                tag = re.search(r"berth:([0-9a-f]{12})", line)
                if tag is None or netmod.link_exists(netmod.BRIDGE_PREFIX + tag.group(1)):
                    continue
                rule = shlex.split(line)
                if rule[:1] != ["-A"]:
                    continue
                if netmod.iptables("-t", table, "-D", *rule[1:], check=False).returncode == 0:
                    cleaned.append(f"iptables rule of the removed bridge {netmod.BRIDGE_PREFIX}{tag.group(1)}")
    return cleaned


def _clean_mounts(config: EngineConfig) -> list[str]:
    """Detach mounts under the root that are no snapshot's root filesystem."""
    from engine.snapshots import mounts
    from engine.snapshots.snapshotter import Snapshotter, mount_points

    snaps = Snapshotter(config, driver="copy")  # no prepare here: no driver probe
    cleaned = []
    for point in sorted(mount_points(), key=len, reverse=True):
        if point.startswith(str(config.root) + "/") and not _snapshot_mount(snaps, Path(point)):
            with contextlib.suppress(OSError):
                mounts.umount(point, detach=True)
                cleaned.append(f"mount {point}")
    return cleaned


def _snapshot_mount(snaps, point: Path) -> bool:
    """``snapshots/<key>/merged`` of a snapshot directory that exists (with its record, or
    still being prepared: the record comes last)."""
    return point.name == "merged" and point.parent.parent == snaps.dir and point.parent.is_dir() \
        and not point.parent.name.startswith(".")


def describe(report: BootReport) -> dict:
    return {"started": report.started, "failed": report.failed, "cleaned": report.cleaned,
            "reclaimed": report.reclaimed}


def dumps(report: BootReport) -> str:
    return json.dumps(describe(report), indent=2)
