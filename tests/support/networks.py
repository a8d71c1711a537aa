"""Host network state for tests: what Berth made (bridges, veths, namespaces, iptables
rules) and cleanup that removes it whatever a test left."""

from __future__ import annotations

import contextlib
import os
import subprocess

from engine.errors import EngineError


def host_state() -> dict[str, set[str]]:
    links = set(os.listdir("/sys/class/net"))
    netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    rules = set()
    for table in ("filter", "nat"):
        out = subprocess.run(["iptables", "-w", "5", "-t", table, "-S"], capture_output=True, text=True).stdout
        rules |= {line for line in out.splitlines() if "berth" in line.lower()}
    return {"links": {x for x in links if x.startswith(("bb-", "vb"))},
            "netns": {x for x in netns if x.startswith("berth-")}, "rules": rules}


def strays(before: dict[str, set[str]]) -> dict[str, set[str]]:
    now = host_state()
    return {k: v - before[k] for k, v in now.items() if v - before[k]}


def remove_all(engine) -> None:
    """Containers first (they hold addresses), then every network of the engine root."""
    from engine.net.networks import Networks

    for container_id in engine.ids():
        with contextlib.suppress(EngineError):
            engine.remove(container_id, force=True)
    nets = Networks(engine.config)
    for net in nets._records():
        for cid in list(net.get("Endpoints") or {}):
            with contextlib.suppress(EngineError):
                nets.on_remove(cid)
        with contextlib.suppress(EngineError):
            nets.remove(net["Id"], predefined=True)


def remove_engine(config) -> None:
    """Every container and network of an engine root, if it exists (for cleanups)."""
    from engine.supervisor.servers import stop_servers

    stop_servers(config.run_root)
    if not config.root.is_dir():
        return
    from engine.containers.manager import Containers

    remove_all(Containers(config))


def remove_networks(config) -> None:
    """Every network of an engine root and what its containers hold on the host (namespaces,
    veths, bridges, iptables rules): for cleanups that delete the root afterwards."""
    if not (config.root / "networks").is_dir():
        return
    from engine.net.networks import Networks

    nets = Networks(config)
    for path in nets.endpoints.glob("*.json"):
        with contextlib.suppress(EngineError, OSError):
            ep = nets.endpoint(path.stem)
            if ep is not None:
                nets.stop_keeper(ep, timeout=2)
            nets.on_remove(path.stem)
    for net in nets._records():
        net["Endpoints"] = {}
        nets._save(net)
        with contextlib.suppress(EngineError):
            nets.remove(net["Id"], predefined=True)
