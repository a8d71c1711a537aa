"""``python -m engine system check``: is the store consistent with itself and the host?

Read only: it reports, it repairs nothing (``engine.system.gc`` and ``engine.system.boot`` do). It checks

- images: every registered manifest, its config and its layer blobs are present and hash
  to their digests;
- snapshots: each belongs to a container (or to a build, for a while), stacks on layer
  directories that exist, and every container has its snapshot;
- mounts: whatever is mounted under the root is the rootfs of a snapshot, and every
  running container's overlay rootfs is mounted;
- containers: one that says it runs has a live monitor or a live process (unsupervised);
- network objects: a running container on a bridge has its namespace, veths and (with
  published ports) a live keeper; a stopped one has none of them; endpoints and networks
  name containers that exist; each bridge in use exists with its iptables rules, once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.config import EngineConfig
from engine.containers.state import read_records
from engine.errors import EngineError

RUNNING = ("running", "paused")


def run(config: EngineConfig) -> list[str]:
    """Every problem found, one sentence each (empty: all is well)."""
    if not config.root.is_dir():
        return [f"the engine root {config.root} does not exist"]
    problems: list[str] = []
    problems += _images(config)
    containers = _containers(config)
    problems += _container_states(config, containers)
    problems += _snapshots(config, containers)
    problems += _networks(config, containers)
    return problems


# ---------------------------------------------------------------- images

def _images(config: EngineConfig) -> list[str]:
    from engine.images.store import ImageStore

    store = ImageStore(config)
    content = store.content
    problems = []
    verified: dict[str, bool] = {}

    def blob(digest: str, what: str) -> None:
        if digest in verified:
            ok = verified[digest]
        elif not content.has(digest):
            ok = verified[digest] = False
            problems.append(f"image {what}: blob {digest} is missing")
            return
        else:
            try:
                ok = verified[digest] = content.verify(digest)
            except (OSError, EngineError):
                ok = verified[digest] = False
        if not ok and content.has(digest):
            problems.append(f"image {what}: blob {digest} does not match its digest")

    try:
        data = store._load()
    except EngineError as exc:
        return [f"images: {exc}"]
    for manifest_digest, record in data["images"].items():
        what = record.get("id", manifest_digest)[7:19]
        blob(manifest_digest, what)
        if not content.has(manifest_digest):
            continue
        try:
            manifest = json.loads(content.read(manifest_digest))
        except (ValueError, EngineError):
            problems.append(f"image {what}: manifest {manifest_digest} is not valid JSON")
            continue
        config_digest = (manifest.get("config") or {}).get("digest")
        if config_digest:
            blob(config_digest, what)
        for layer in manifest.get("layers") or []:
            if layer.get("digest"):
                blob(layer["digest"], what)
    return problems


# ---------------------------------------------------------------- containers

def _containers(config: EngineConfig) -> dict[str, tuple[dict, dict]]:
    return read_records(config.root / "containers")


def _alive(pid, start=None) -> bool:
    from engine.base.proc import process_start_time

    if not pid:
        return False
    now = process_start_time(int(pid))
    return now is not None and (start is None or now == start)


def _runtime_pid_alive(config: EngineConfig, container_id: str) -> bool:
    """The runtime's record of the container's init names a live process."""
    try:
        state = json.loads((config.run_root / "runc" / container_id / "state.json").read_text())
    except (OSError, ValueError):
        return False
    return _alive(state.get("init_process_pid"), state.get("init_process_start"))


def running(config: EngineConfig, state: dict, container_id: str) -> bool:
    """Really running: its monitor lives, or (unsupervised) its init does."""
    if state.get("Status") not in RUNNING + ("restarting",):
        return False
    return _alive(state.get("MonitorPid"), state.get("MonitorStart")) or \
        _runtime_pid_alive(config, container_id)


def _container_states(config: EngineConfig, containers) -> list[str]:
    problems = []
    for cid, (cconfig, state) in containers.items():
        name = cconfig.get("Name", cid).lstrip("/")
        if state.get("Status") in RUNNING + ("restarting",) and not running(config, state, cid):
            problems.append(f"container {name}: recorded as {state['Status']} but neither its monitor "
                            "nor its process runs")
    return problems


# ---------------------------------------------------------------- snapshots and mounts

def _snapshots(config: EngineConfig, containers) -> list[str]:
    from engine.snapshots.snapshotter import Snapshotter, mount_points
    from engine.system import gc

    snaps = Snapshotter(config, driver="copy")  # listing only: no driver probe
    problems = []
    keys = set(snaps.list())
    for cdir in gc.killed_creates(config):
        problems.append(f"container directory {cdir.name[:12]} has no config: a create killed half-way")
    for key in gc.orphan_snapshots(config, snaps):
        problems.append(f"snapshot {key[:12]}: no container uses it")
    for key in keys:
        try:
            for lower in snaps.lowers(key):
                if not Path(lower).is_dir():
                    problems.append(f"snapshot {key[:12]}: its layer directory {lower} is missing")
        except (EngineError, OSError, ValueError, KeyError):
            problems.append(f"snapshot {key[:12]}: its record is unreadable")
    for leftover in snaps.dir.glob(".trash-*"):
        problems.append(f"snapshot trash {leftover.name} is left over")
    mounted = [p for p in mount_points() if p.startswith(str(config.root) + "/")]
    for cid, (cconfig, state) in containers.items():
        name = cconfig.get("Name", cid).lstrip("/")
        if cid not in keys:
            problems.append(f"container {name}: its snapshot (root filesystem) is missing")
            continue
        if state.get("Status") in RUNNING and running(config, state, cid):
            try:
                driver = snaps.driver_of(cid)
            except EngineError:
                continue
            if driver == "overlay" and str(snaps.path(cid)) not in mounted:
                problems.append(f"container {name}: runs but its root filesystem is not mounted")
    expected = {str(snaps.path(key)) for key in keys}
    for point in mounted:
        if point not in expected:
            problems.append(f"mount {point} belongs to nothing in the store")
    return problems


# ---------------------------------------------------------------- network objects

def _networks(config: EngineConfig, containers) -> list[str]:
    if not (config.root / "networks").is_dir():
        return []
    from engine.net import networks as netmod

    nets = netmod.Networks(config)
    problems = []
    records = {n["Id"]: n for n in nets._records()}
    bridges_in_use = set()
    for path in sorted(nets.endpoints.glob("*.json")):
        cid = path.stem
        ep = nets.endpoint(cid)
        if ep is None:
            problems.append(f"endpoint record {path.name} is unreadable")
            continue
        name = ep.get("Name", cid[:12])
        if cid not in containers:
            problems.append(f"endpoint of container {name}: the container does not exist")
            continue
        is_running = running(config, containers[cid][1], cid)
        has_netns = netmod.netns_exists(ep["Netns"])
        keeper = ep.get("Keeper")
        keeper_alive = bool(keeper) and _alive(keeper[0], keeper[1])
        for net_id, link in ep["Networks"].items():
            if net_id not in records:
                problems.append(f"container {name}: on network {link.get('Name', net_id[:12])}, which does "
                                "not exist")
                continue
            if is_running:
                bridges_in_use.add(net_id)
                if not netmod.link_exists(link["Veth"]):
                    problems.append(f"container {name}: runs but its veth {link['Veth']} is missing")
            elif netmod.link_exists(link["Veth"]):
                problems.append(f"container {name}: stopped but its veth {link['Veth']} is left")
        if is_running:
            if not has_netns:
                problems.append(f"container {name}: runs but its network namespace {ep['Netns']} is missing")
            if ep.get("Ports") and not keeper_alive:
                problems.append(f"container {name}: runs but no keeper serves its published ports")
        else:
            if has_netns:
                problems.append(f"container {name}: stopped but its network namespace {ep['Netns']} is left")
            if keeper_alive:
                problems.append(f"container {name}: stopped but its keeper still runs")
            if ep.get("Bound"):
                problems.append(f"container {name}: stopped but its ports are recorded as bound")
    for net in records.values():
        for cid, entry in (net.get("Endpoints") or {}).items():
            if cid not in containers:
                problems.append(f"network {net['Name']}: holds an address for {entry.get('Name', cid[:12])}, "
                                "a container that does not exist")
        if net["Id"] in bridges_in_use:
            problems += _bridge(netmod, nets, net)
        elif not netmod.link_exists(net["Bridge"]) and _tagged_rules(netmod, net):
            problems.append(f"network {net['Name']}: iptables rules are left for its bridge {net['Bridge']}, "
                            "which is gone")
    return problems


def _tagged_rules(netmod, net: dict) -> list[str]:
    tag = f"berth:{net['Id'][:12]}"
    return [line for table in ("filter", "nat")
            for line in netmod.iptables("-t", table, "-S", check=False).stdout.splitlines() if tag in line]


def _bridge(netmod, nets, net: dict) -> list[str]:
    problems = []
    if not netmod.link_exists(net["Bridge"]):
        problems.append(f"network {net['Name']}: containers run on it but its bridge {net['Bridge']} is missing")
    listed: dict[str, str] = {}
    for table in ("filter", "nat"):
        listed[table] = netmod.iptables("-t", table, "-S", check=False).stdout
    for table, chain, rule in nets._rules(net):
        if netmod.iptables("-t", table, "-C", chain, *rule, check=False).returncode != 0:
            problems.append(f"network {net['Name']}: iptables rule missing: -t {table} -A {chain} {' '.join(rule)}")
    tag = f"berth:{net['Id'][:12]}"
    for table, text in listed.items():
        lines = [line for line in text.splitlines() if tag in line]
        if len(lines) != len(set(lines)):
            problems.append(f"network {net['Name']}: iptables rules in {table} are duplicated")
    return problems


def summary(problems: list[str]) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if not problems:
        return f"{stamp} No problems found."
    return f"{stamp} {len(problems)} problem{'s' if len(problems) > 1 else ''} found."
