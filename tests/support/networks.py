"""Host network state for tests: what Berth made (bridges, veths, namespaces, iptables
rules) and cleanup that removes it whatever a test left."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import subprocess

from engine.errors import EngineError


def host_state(config=None) -> dict[str, set[str]]:
    """Berth's bridges, veths, namespaces and tagged iptables rules on the host; with an
    engine ``config``, only those named after ids that engine made (another engine beside
    the test, a developer's console or another test, has its own: see ``own_names``)."""
    links = set(os.listdir("/sys/class/net"))
    netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    rules = set()
    for table in ("filter", "nat"):
        out = subprocess.run(["iptables", "-w", "5", "-t", table, "-S"], capture_output=True, text=True).stdout
        rules |= {line for line in out.splitlines() if "berth" in line.lower()}
    state = {"links": {x for x in links if x.startswith(("bb-", "vb"))},
             "netns": {x for x in netns if x.startswith("berth-")}, "rules": rules}
    if config is None:
        return state
    names = own_names(config)
    return {"links": state["links"] & names["links"], "netns": state["netns"] & names["netns"],
            "rules": {r for r in rules if any(tag in r for tag in names["tags"])}}


def strays(before: dict[str, set[str]], config=None) -> dict[str, set[str]]:
    now = host_state(config)
    return {k: v - before[k] for k, v in now.items() if v - before[k]}


# Ids made in this process while ``recording_ids()`` runs: a network or container whose
# create failed is in no record and no event, but what it left is named after its id.
_made_here: set[str] = set()


@contextlib.contextmanager
def recording_ids():
    """Note every id this process makes (the engine's ids are ``secrets.token_hex``)."""
    real = secrets.token_hex

    def recording(nbytes=None):
        value = real(nbytes)
        _made_here.add(value)
        return value

    _made_here.clear()
    secrets.token_hex = recording
    try:
        yield _made_here
    finally:
        secrets.token_hex = real


def own_names(config) -> dict[str, set[str]]:
    """The names of the host objects an engine made or could have made: from the network
    and container ids of its records, of its events log and made while recording, as
    engine.networks names them (``bb-<12>`` bridges and ``berth:<12>`` rule tags of a
    network, ``berth-<16>`` namespaces of a container, ``vb<11>`` veths of a pair)."""
    from engine import events

    networks, containers = set(_made_here), set(_made_here)
    if (config.root / "networks").is_dir():
        networks |= {p.stem for p in (config.root / "networks").glob("*.json")}
    if (config.root / "containers").is_dir():
        containers |= {p.name for p in (config.root / "containers").iterdir() if p.name != "names"}
    with contextlib.suppress(OSError):
        for event in events.read(config):
            {"network": networks, "container": containers}.get(event["Type"], set()).add(event["Actor"]["ID"])
    veths = {"vb" + hashlib.sha256(f"{c}:{n}".encode()).hexdigest()[:11] for c in containers for n in networks}
    return {"links": {f"bb-{n[:12]}" for n in networks} | veths,
            "netns": {f"berth-{c[:16]}" for c in containers}, "tags": {f"berth:{n[:12]}" for n in networks}}


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
