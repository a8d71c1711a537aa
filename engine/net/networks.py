"""Networks: ``none``, ``host``, the engine's default ``private`` (its own namespace with
only ``lo``), the default bridge ``bridge`` and user-defined bridge networks.

Records: ``root/networks/<id>.json`` (name, subnet, gateway, bridge, endpoints: the
addresses given out) and ``root/networks/endpoints/<container id>.json`` (a container's
namespace, its address on each network, its published ports, its keeper). Every change
of records holds ``root/networks/lock``; choosing a subnet and touching host state
(bridges, iptables) also holds a host-wide lock, because several engine roots share the
host's interfaces.

Host objects, all named so they cannot clash with Docker's (``docker0``, ``br-<12>``,
``veth…``) nor between engine roots (ids are random):
- a bridge ``bb-<12 hex of the network id>`` holding the gateway address;
- per container: a namespace ``berth-<16 hex>`` (``ip netns``), and per network a veth
  pair whose host end ``vb<11 hex>`` is on the bridge and whose other end is ``ethN``;
- iptables (the ``iptables`` CLI: iptables-nft here): a chain ``BERTH-FORWARD`` jumped to
  from ``FORWARD`` that accepts traffic within a bridge and out of it (dockerd sets the
  FORWARD policy to DROP), drops traffic between two Berth bridges (networks are
  isolated), and a MASQUERADE rule per subnet for traffic leaving the host.

Names resolve through ``/etc/hosts``: each container's hosts file lists the containers
that share a network with it, and is rewritten in place (it is bind-mounted) when a
container joins or leaves.

A container's addresses are given at create (or connect) and kept until it is removed
(or disconnected); its namespace and veths exist while it runs: made by ``start`` and
torn down by its keeper (``engine.net.keeper``) when the monitor exits (or, the monitor killed,
when the container's init does).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.base.clock import now_rfc3339_seconds
from engine.base.files import lock, write_json_atomic
from engine.base.labels import labels_match
from engine.config import EngineConfig
from engine.errors import Conflict, EngineError, InvalidArgument, NotFound, RuntimeFailure
from engine.net.ports import PortSpec, bind, parse_publish_list

BUILTIN = ("none", "host", "private")
DEFAULT_BRIDGE = "bridge"
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")
CHAIN = "BERTH-FORWARD"
BRIDGE_PREFIX = "bb-"
VETH_PREFIX = "vb"
NETNS_PREFIX = "berth-"
HOST_LOCK = Path("/run/lock/berth-networks.lock")
# Subnets given out when none is asked for: /24s from 10.213.0.0/16 downwards.
POOL = [ipaddress.ip_network(f"10.{second}.0.0/16") for second in range(213, 199, -1)]
REPO_DIR = Path(__file__).resolve().parents[2]
# As the monitor: a lean interpreter (``-I -S``) importing the engine's keeper module.
KEEPER_LAUNCHER = (f"import sys; sys.path.append({str(REPO_DIR)!r}); "
                   "from engine.net import keeper; keeper.run_main()")


# ---------------------------------------------------------------- host commands

def _run(argv: list[str], check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, input=input,
                         stdin=subprocess.DEVNULL if input is None else None)
    if check and out.returncode != 0:
        raise RuntimeFailure(f"{' '.join(argv)}: {(out.stderr or out.stdout).strip()}")
    return out


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["ip", *args], check)


def ip_batch(commands: list[str], netns: str | None = None) -> None:
    """Several ``ip`` commands in one process (each ``ip`` run costs ~10 ms)."""
    if commands:
        _run(["ip", *(["-n", netns] if netns else []), "-batch", "-"], input="\n".join(commands) + "\n")


def iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["iptables", "-w", "5", *args], check)


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def host_lock() -> lock:
    """The lock on the host's shared network state (bridges, addresses of every engine)."""
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    return lock(HOST_LOCK)


def host_routes() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination the host routes somewhere (all tables), but the default."""
    out = ip("-4", "-j", "route", "show", "table", "all", check=False)
    nets = []
    try:
        routes = json.loads(out.stdout or "[]")
    except ValueError:
        routes = []
    for route in routes:
        dst = route.get("dst")
        if not dst or dst == "default" or route.get("type") in ("broadcast", "local"):
            continue
        try:
            nets.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            continue
    out = ip("-4", "-j", "addr", check=False)  # addresses of interfaces that are down
    try:
        for link in json.loads(out.stdout or "[]"):
            for addr in link.get("addr_info") or []:
                if addr.get("local") and not addr["local"].startswith("127."):
                    nets.append(ipaddress.ip_network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    except ValueError:
        pass
    return nets


def _mac(address: str) -> str:
    return "02:b7:" + ":".join(f"{int(b):02x}" for b in address.split("."))


def _process_start(pid: int) -> int | None:
    from engine.base.proc import process_start_time

    return process_start_time(pid)


# ---------------------------------------------------------------- the store

class Networks:
    def __init__(self, config: EngineConfig):
        self.config = config
        self.root = config.subdir("networks")
        self.endpoints = self.root / "endpoints"
        self.endpoints.mkdir(exist_ok=True)
        self.lock_path = self.root / "lock"

    def _locked(self):
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        return lock(self.lock_path)

    # ------------------------------------------------------------ records
    def _records(self) -> list[dict]:
        """Every network record. One that cannot be read fails the reading, never skipped: a
        listing without it would say the network is gone (and the console would forget it),
        and allocating a subnet without it could hand out its subnet again."""
        out = []
        for path in sorted(self.root.glob("*.json")):
            try:
                record = json.loads(path.read_text())
                if not isinstance(record, dict) or not {"Id", "Name"} <= record.keys():
                    raise ValueError("not a network record")
            except FileNotFoundError:  # removed meanwhile
                continue
            except (OSError, ValueError) as exc:
                raise EngineError(f"network record {path.name} is unreadable ({exc}); "
                                  f"repair or remove {path}") from None
            out.append(record)
        return out

    def _save(self, net: dict) -> None:
        write_json_atomic(self.root / f"{net['Id']}.json", net, fsync=False, indent=1)

    def _find(self, ref: str) -> dict | None:
        ref = (ref or "").strip()
        records = self._records()
        for net in records:
            if net["Name"] == ref or net["Id"] == ref:
                return net
        if re.fullmatch(r"[0-9a-f]{3,64}", ref):
            matches = [n for n in records if n["Id"].startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        return None

    def get(self, ref: str) -> dict:
        if ref in ("default",):
            ref = DEFAULT_BRIDGE
        net = self._find(ref)
        if net is None:
            if ref == DEFAULT_BRIDGE:
                return self._ensure_default()
            raise NotFound(f"network {ref} not found")
        return net

    def _ensure_default(self) -> dict:
        with self._locked():
            net = self._find(DEFAULT_BRIDGE)
            if net is None:
                net = self._create_locked(DEFAULT_BRIDGE, None, None, {}, False, default=True)
        return net

    def _endpoint_path(self, container_id: str) -> Path:
        return self.endpoints / f"{container_id}.json"

    def endpoint(self, container_id: str) -> dict | None:
        try:
            return json.loads(self._endpoint_path(container_id).read_text())
        except (OSError, ValueError):
            return None

    def _save_endpoint(self, ep: dict) -> None:
        write_json_atomic(self._endpoint_path(ep["Id"]), ep, fsync=False, indent=1)

    # ------------------------------------------------------------ create
    def create(self, name: str, subnet: str | None = None, gateway: str | None = None,
               labels: dict[str, str] | None = None, internal: bool = False) -> dict:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidArgument(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                                  "are allowed")
        if name in BUILTIN or name in (DEFAULT_BRIDGE, "default"):
            raise Conflict(f"network name {name} is reserved (a built-in network)")
        net_subnet, net_gateway = self._check_subnet(subnet, gateway)
        with self._locked():
            if self._find(name) is not None and self._find(name)["Name"] == name:
                raise Conflict(f"network with name {name} already exists")
            net = self._create_locked(name, net_subnet, net_gateway, labels or {}, internal)
        return self.inspect(net["Id"])

    @staticmethod
    def _check_subnet(subnet, gateway):
        if subnet is None:
            if gateway:
                raise InvalidArgument("a gateway needs a --subnet")
            return None, None
        try:
            net = ipaddress.ip_network(subnet, strict=True)
        except ValueError as exc:
            raise InvalidArgument(f"invalid subnet {subnet!r}: {exc}") from None
        if net.version != 4:
            raise InvalidArgument(f"invalid subnet {subnet}: only IPv4 subnets are supported")
        if net.prefixlen > 29:
            raise InvalidArgument(f"subnet {subnet} is too small (at most /29)")
        if net.is_loopback or net.is_multicast or net.is_link_local or net.is_unspecified:
            raise InvalidArgument(f"subnet {subnet} cannot be used for containers")
        if gateway:
            try:
                gw = ipaddress.ip_address(gateway)
            except ValueError:
                raise InvalidArgument(f"invalid gateway {gateway!r}") from None
            if gw not in net or gw in (net.network_address, net.broadcast_address):
                raise InvalidArgument(f"gateway {gateway} is not a host address of {subnet}")
        else:
            gw = net.network_address + 1
        return net, gw

    def _create_locked(self, name, subnet, gateway, labels, internal, default=False) -> dict:
        net_id = secrets.token_hex(32)
        with host_lock():
            used = host_routes() + [ipaddress.ip_network(n["Subnet"]) for n in self._records()]
            if subnet is None:
                subnet = next((c for pool in POOL for c in pool.subnets(new_prefix=24)
                               if not any(c.overlaps(u) for u in used)), None)
                if subnet is None:
                    raise Conflict("no free subnet left in 10.200.0.0-10.213.255.255; give one with --subnet")
                gateway = subnet.network_address + 1
            else:
                clash = next((u for u in used if subnet.overlaps(u)), None)
                if clash is not None:
                    raise Conflict(f"subnet {subnet} overlaps {clash}, which is in use on this host")
            net = {
                "Name": name, "Id": net_id, "Created": now_rfc3339_seconds(), "Driver": "bridge", "Scope": "local",
                "Internal": bool(internal), "Labels": dict(labels), "Default": default,
                "Subnet": str(subnet), "Gateway": str(gateway),
                "Bridge": BRIDGE_PREFIX + net_id[:12], "Endpoints": {},
            }
            try:
                self._bridge_up(net)
                self._save(net)
            except BaseException:
                self._bridge_down(net)
                raise
        from engine import events

        events.emit(self.config, "network", "create", net_id, {"name": name, "type": "bridge"})
        return net

    # ------------------------------------------------------------ host state of a network
    @staticmethod
    def _rules(net: dict) -> list[tuple[str, str, list[str]]]:
        br = net["Bridge"]
        tag = ["-m", "comment", "--comment", f"berth:{net['Id'][:12]}"]
        rules = [
            ("filter", CHAIN, ["-i", br, "-o", br, *tag, "-j", "ACCEPT"]),
            ("filter", CHAIN, ["-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                               *tag, "-j", "ACCEPT"]),
            ("filter", CHAIN, ["-i", br, "-o", BRIDGE_PREFIX + "+", *tag, "-j", "DROP"]),
        ]
        if not net.get("Internal"):
            rules += [
                ("filter", CHAIN, ["-i", br, "!", "-o", br, *tag, "-j", "ACCEPT"]),
                ("nat", "POSTROUTING", ["-s", net["Subnet"], "!", "-o", br, *tag, "-j", "MASQUERADE"]),
            ]
        else:
            rules.append(("filter", CHAIN, ["-i", br, *tag, "-j", "DROP"]))
        return rules

    def _bridge_up(self, net: dict) -> None:
        br = net["Bridge"]
        prefix = ipaddress.ip_network(net["Subnet"]).prefixlen
        if not link_exists(br):
            ip("link", "add", br, "type", "bridge")
        ip("addr", "replace", f"{net['Gateway']}/{prefix}", "dev", br)
        ip("link", "set", br, "up")
        if iptables("-S", CHAIN, check=False).returncode != 0:
            iptables("-N", CHAIN)
        if iptables("-C", "FORWARD", "-j", CHAIN, check=False).returncode != 0:
            iptables("-I", "FORWARD", "1", "-j", CHAIN)
        for table, chain, rule in self._rules(net):
            if iptables("-t", table, "-C", chain, *rule, check=False).returncode != 0:
                iptables("-t", table, "-A", chain, *rule)
        if not net.get("Internal"):
            try:
                if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "1":
                    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
            except OSError:
                pass

    def _bridge_down(self, net: dict) -> None:
        for table, chain, rule in self._rules(net):
            while iptables("-t", table, "-D", chain, *rule, check=False).returncode == 0:
                pass
        if link_exists(net["Bridge"]):
            ip("link", "del", net["Bridge"], check=False)
        out = iptables("-S", CHAIN, check=False)
        if out.returncode == 0 and len([x for x in out.stdout.splitlines() if x.strip()]) <= 1:
            while iptables("-D", "FORWARD", "-j", CHAIN, check=False).returncode == 0:
                pass
            iptables("-X", CHAIN, check=False)

    def ensure_bridge(self, net: dict) -> None:
        """After a reboot the bridge is gone while the record stays: make it again."""
        if not link_exists(net["Bridge"]) or \
                iptables("-C", "FORWARD", "-j", CHAIN, check=False).returncode != 0:
            with host_lock():
                self._bridge_up(net)

    # ------------------------------------------------------------ list, inspect, remove
    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict]:
        out = [self._builtin("none"), self._builtin("host")]
        out += [self._summary(n) for n in self._records()]
        if filters:
            out = [n for n in out if _matches(n, filters)]
        return out

    @staticmethod
    def _builtin(name: str) -> dict:
        return {"Name": name, "Id": name, "Driver": "null" if name == "none" else name,
                "Scope": "local", "Created": "", "Internal": False, "Labels": {},
                "IPAM": {"Driver": "default", "Config": []}, "Containers": {}, "Builtin": True}

    def _summary(self, net: dict) -> dict:
        return {
            "Name": net["Name"], "Id": net["Id"], "Created": net["Created"], "Driver": "bridge",
            "Scope": "local", "Internal": net.get("Internal", False), "Labels": net.get("Labels") or {},
            "IPAM": {"Driver": "default", "Config": [{"Subnet": net["Subnet"], "Gateway": net["Gateway"]}]},
            "Options": {"com.docker.network.bridge.name": net["Bridge"]},
            "Containers": {cid: dict(e) for cid, e in (net.get("Endpoints") or {}).items()},
            "Builtin": bool(net.get("Default")),
        }

    def inspect(self, ref: str) -> dict:
        if ref in ("none", "host"):
            return self._builtin(ref)
        return self._summary(self.get(ref))

    def remove(self, ref: str, *, predefined: bool = False) -> None:
        """Remove a network nobody uses; ``predefined`` also lets the default bridge go
        (cleanup, uninstall): it comes back on next use."""
        if ref in ("none", "host", "private"):
            raise Conflict(f"{ref} is a pre-defined network and cannot be removed")
        with self._locked():
            net = self._find(ref)
            if net is None:
                raise NotFound(f"network {ref} not found")
            if net.get("Default") and not predefined:
                raise Conflict(f"{net['Name']} is a pre-defined network and cannot be removed")
            self._prune_stale(net)
            if net.get("Endpoints"):
                names = ", ".join(e.get("Name", cid[:12]) for cid, e in net["Endpoints"].items())
                raise Conflict(f"error while removing network: network {net['Name']} id {net['Id']} has "
                               f"active endpoints ({names})")
            with host_lock():
                self._bridge_down(net)
            (self.root / f"{net['Id']}.json").unlink(missing_ok=True)
        from engine import events

        events.emit(self.config, "network", "destroy", net["Id"], {"name": net["Name"], "type": "bridge"})

    def prune(self) -> list[str]:
        removed = []
        for net in self._records():
            if net.get("Default"):
                continue
            try:
                self.remove(net["Id"])
                removed.append(net["Name"])
            except (Conflict, NotFound):
                continue
        return removed

    def _prune_stale(self, net: dict) -> None:
        """Drop endpoints of containers that no longer exist (a crash between steps)."""
        stale = [cid for cid in net.get("Endpoints") or {}
                 if not (self.config.root / "containers" / cid / "config.json").exists()
                 and not self._endpoint_path(cid).exists()]
        if stale:
            for cid in stale:
                del net["Endpoints"][cid]
            self._save(net)

    # ------------------------------------------------------------ addresses
    def _allocate(self, net: dict, container_id: str, name: str, aliases: list[str]) -> dict:
        subnet = ipaddress.ip_network(net["Subnet"])
        taken = {e["IPv4Address"].split("/")[0] for e in net["Endpoints"].values()}
        taken.add(net["Gateway"])
        address = next((str(h) for h in subnet.hosts() if str(h) not in taken), None)
        if address is None:
            raise Conflict(f"no free address left in network {net['Name']} ({net['Subnet']})")
        entry = {"Name": name, "IPv4Address": f"{address}/{subnet.prefixlen}", "MacAddress": _mac(address),
                 "Aliases": aliases}
        net["Endpoints"][container_id] = entry
        self._save(net)
        return entry

    # ------------------------------------------------------------ hooks for containers
    def check_mode(self, mode: str | None, publish) -> tuple[str, list[PortSpec]]:
        """Validate ``--network`` and ``-p`` before anything is made: (mode, port specs).
        ``-p`` without ``--network`` uses the default bridge, as Docker does."""
        ports = parse_publish_list(publish)
        mode = mode or "private"
        if mode == "default":
            mode = DEFAULT_BRIDGE
        if mode in BUILTIN:
            if ports and mode == "private":
                mode = DEFAULT_BRIDGE
            elif ports:
                raise InvalidArgument(f"ports cannot be published on the {mode} network")
            return mode, ports
        if mode != DEFAULT_BRIDGE and self._find(mode) is None:
            raise NotFound(f"network {mode} not found")
        return mode, ports

    def on_create(self, container_id: str, name: str, hostname: str, mode: str,
                  ports: list[PortSpec], directory: Path, spec: dict) -> str:
        """A container is being created on ``mode``: give it an address, write its hosts
        and resolv.conf, and point its spec at the namespace it will run in. Returns the
        NetworkMode to record. Undone by ``on_remove``."""
        if mode in BUILTIN:
            return mode
        net = self.get(mode)
        netns = NETNS_PREFIX + container_id[:16]
        with self._locked():
            net = self._find(net["Id"])
            if net is None:
                raise NotFound(f"network {mode} not found")
            entry = self._allocate(net, container_id, name, [])
            ep = {"Id": container_id, "Name": name, "Hostname": hostname, "Dir": str(directory),
                  "Netns": netns, "Networks": {net["Id"]: self._link_plan(container_id, net, entry, 0)},
                  "Ports": [p.__dict__ for p in ports], "Bound": [], "Keeper": None}
            self._save_endpoint(ep)
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = f"/run/netns/{netns}"
        (directory / "resolv.conf").write_text(_resolv_conf())
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/etc/resolv.conf"]
        spec["mounts"].append({"destination": "/etc/resolv.conf", "type": "bind",
                               "source": str(directory / "resolv.conf"), "options": ["rbind", "rprivate"]})
        self._write_hosts_for_network(net["Id"])
        return net["Name"]

    @staticmethod
    def _link_plan(container_id: str, net: dict, entry: dict, index: int) -> dict:
        tag = hashlib.sha256(f"{container_id}:{net['Id']}".encode()).hexdigest()[:11]
        return {"Name": net["Name"], "IP": entry["IPv4Address"], "Gateway": net["Gateway"],
                "Mac": entry["MacAddress"], "Veth": VETH_PREFIX + tag, "Peer": "vp" + tag,
                "Ifname": f"eth{index}", "Bridge": net["Bridge"]}

    def on_remove(self, container_id: str) -> None:
        """The container is removed: namespace, keeper, addresses, hosts entries. Idempotent."""
        ep = self.endpoint(container_id)
        if ep is None:
            return
        self.teardown(container_id)
        touched = []
        with self._locked():
            for net_id in list(ep["Networks"]):
                net = self._find(net_id)
                if net is not None and container_id in net["Endpoints"]:
                    del net["Endpoints"][container_id]
                    self._save(net)
                    touched.append(net_id)
            self._endpoint_path(container_id).unlink(missing_ok=True)
        for net_id in touched:
            self._write_hosts_for_network(net_id)

    def start(self, container_id: str) -> NetStart | None:
        """Before the monitor runs the container: its namespace with a veth per network,
        and its published ports bound. None for containers without a bridge network."""
        ep = self.endpoint(container_id)
        if ep is None:
            return None
        self.stop_keeper(ep)
        self.teardown(container_id)
        sockets = []
        try:
            with self._locked():
                ep = self.endpoint(container_id)
                ip("netns", "add", ep["Netns"])
                if not ep["Networks"]:  # else brought up with the first veth
                    ip_batch(["link set lo up"], ep["Netns"])
                first = True
                for net_id, link in ep["Networks"].items():
                    net = self._find(net_id)
                    if net is None:
                        continue
                    self.ensure_bridge(net)
                    self._link_up(ep["Netns"], link, default_route=first)
                    first = False
                bound = []
                target = next(iter(ep["Networks"].values()), None)
                for port in ep["Ports"]:
                    spec = PortSpec(**port)
                    sock = bind(spec)
                    sockets.append(sock)
                    if target is None:
                        continue
                    bound.append({"host_ip": spec.host_ip, "host_port": sock.getsockname()[1],
                                  "container_port": spec.container_port, "proto": spec.proto,
                                  "target_ip": target["IP"].split("/")[0]})
                ep["Bound"] = bound
                self._save_endpoint(ep)
        except BaseException:
            for sock in sockets:
                sock.close()
            self.teardown(container_id)
            raise
        return NetStart(self, container_id, sockets, ep["Bound"])

    def _link_up(self, netns: str, link: dict, default_route: bool) -> None:
        veth, peer, name = link["Veth"], link["Peer"], link["Ifname"]
        if link_exists(veth):
            ip("link", "del", veth, check=False)
        try:
            ip_batch([f"link add {veth} type veth peer name {peer}", f"link set {peer} netns {netns}",
                      f"link set {veth} master {link['Bridge']} up"])
            ip_batch(["link set lo up", f"link set {peer} name {name}", f"link set {name} address {link['Mac']}",
                      f"addr add {link['IP']} dev {name}", f"link set {name} up",
                      *([f"route replace default via {link['Gateway']}"] if default_route else [])], netns)
        except BaseException:
            ip("link", "del", veth, check=False)
            raise

    def teardown(self, container_id: str, keeper: int | None = None) -> None:
        """The container stopped: its namespace and veths go, its ports are released.
        ``keeper``: called by that keeper, which only tears down what is still its own."""
        with self._locked():
            ep = self.endpoint(container_id)
            if ep is None:
                return
            if keeper is not None and ep.get("Keeper") and ep["Keeper"][0] != keeper:
                return  # a newer start owns the namespace now
            if netns_exists(ep["Netns"]):
                ip("netns", "del", ep["Netns"], check=False)
            for link in ep["Networks"].values():
                if link_exists(link["Veth"]):
                    ip("link", "del", link["Veth"], check=False)
            ep["Bound"] = []
            ep["Keeper"] = None
            self._save_endpoint(ep)

    def stop_keeper(self, ep: dict, timeout: float = 10) -> None:
        keeper = ep.get("Keeper")
        if not keeper:
            return
        pid, start = keeper
        if _process_start(pid) != start:
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _process_start(pid) == start and time.monotonic() < deadline:
            time.sleep(0.01)

    def stopped(self, container_id: str) -> None:
        """The container has stopped (its monitor is gone): release at once rather than
        wait for the keeper to notice."""
        ep = self.endpoint(container_id)
        if ep is None:
            return
        self.stop_keeper(ep)
        self.teardown(container_id)

    def _spawn_keeper(self, container_id: str, sockets, bound: list[dict], monitor: tuple[int, int]) -> None:
        from engine import events

        ep = self.endpoint(container_id) or {}
        plan = {"root": str(self.config.root), "run_root": str(self.config.run_root),
                "container": container_id, "name": ep.get("Name", ""), "monitor": list(monitor),
                "ports": bound, "runtime_root": str(self.config.run_root / "runc"),
                "events": str(events.log_path(self.config))}
        pid = spawn_keeper(plan, [s.fileno() for s in sockets])
        start = _process_start(pid)
        with self._locked():
            ep = self.endpoint(container_id)
            if ep is not None:
                ep["Keeper"] = [pid, start]
                self._save_endpoint(ep)

    # ------------------------------------------------------------ connect, disconnect
    def connect(self, ref: str, container_id: str, aliases: list[str] | None = None) -> None:
        net = self.get(ref)
        ep = self.endpoint(container_id)
        if ep is None:
            raise Conflict("the container is not on a bridge network (none, host or private): "
                           "it cannot be connected")
        with self._locked():
            net = self._find(net["Id"])
            ep = self.endpoint(container_id)
            if net["Id"] in ep["Networks"]:
                raise Conflict(f"container {ep['Name']} is already connected to network {net['Name']}")
            entry = self._allocate(net, container_id, ep["Name"], list(aliases or []))
            used = {link["Ifname"] for link in ep["Networks"].values()}
            index = next(i for i in range(64) if f"eth{i}" not in used)
            link = self._link_plan(container_id, net, entry, index)
            try:
                if netns_exists(ep["Netns"]):
                    self.ensure_bridge(net)
                    self._link_up(ep["Netns"], link, default_route=not ep["Networks"])
            except BaseException:
                del net["Endpoints"][container_id]
                self._save(net)
                raise
            ep["Networks"][net["Id"]] = link
            self._save_endpoint(ep)
        self._write_hosts_for_network(net["Id"])
        self._write_hosts(container_id)
        from engine import events

        events.emit(self.config, "network", "connect", net["Id"], {"name": net["Name"], "container": container_id})

    def disconnect(self, ref: str, container_id: str, force: bool = False) -> None:
        net = self.get(ref)
        with self._locked():
            ep = self.endpoint(container_id)
            net = self._find(net["Id"])
            if ep is None or net["Id"] not in ep["Networks"]:
                if force and container_id in net["Endpoints"]:
                    del net["Endpoints"][container_id]
                    self._save(net)
                    return
                raise Conflict(f"container {container_id[:12]} is not connected to network {net['Name']}")
            link = ep["Networks"].pop(net["Id"])
            if netns_exists(ep["Netns"]):
                ip("link", "del", link["Veth"], check=False)
            net["Endpoints"].pop(container_id, None)
            self._save(net)
            self._save_endpoint(ep)
        self._write_hosts_for_network(net["Id"])
        self._write_hosts(container_id)
        from engine import events

        events.emit(self.config, "network", "disconnect", net["Id"],
                    {"name": net["Name"], "container": container_id})

    # ------------------------------------------------------------ /etc/hosts
    def _write_hosts_for_network(self, net_id: str) -> None:
        net = self._find(net_id)
        if net is None:
            return
        for cid in list(net.get("Endpoints") or {}):
            self._write_hosts(cid)

    def _write_hosts(self, container_id: str) -> None:
        ep = self.endpoint(container_id)
        if ep is None:
            return
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        own = [link["IP"].split("/")[0] for link in ep["Networks"].values()]
        names = " ".join(dict.fromkeys([ep["Hostname"], ep["Name"]]))
        lines += [f"{address}\t{names}" for address in own] or [f"127.0.1.1\t{names}"]
        seen = set()
        for net_id in ep["Networks"]:
            net = self._find(net_id)
            if net is None:
                continue
            for cid, entry in sorted(net["Endpoints"].items()):
                if cid == container_id or (cid, net_id) in seen:
                    continue
                seen.add((cid, net_id))
                peer = self.endpoint(cid)
                peer_names = [entry["Name"], *(entry.get("Aliases") or [])]
                if peer is not None:
                    peer_names.append(peer["Hostname"])
                lines.append(f"{entry['IPv4Address'].split('/')[0]}\t{' '.join(dict.fromkeys(peer_names))}")
        data = ("\n".join(lines) + "\n").encode()
        path = Path(ep["Dir"]) / "hosts"
        try:  # in place: the file is bind-mounted into the running container
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    # ------------------------------------------------------------ for inspect
    def settings(self, container_id: str) -> dict:
        """``NetworkSettings`` of a container, Docker-shaped."""
        ep = self.endpoint(container_id)
        if ep is None:
            return {"Networks": {}, "Ports": {}, "IPAddress": "", "SandboxKey": ""}
        networks = {}
        for net_id, link in ep["Networks"].items():
            address, _, prefix = link["IP"].partition("/")
            networks[link["Name"]] = {"NetworkID": net_id, "IPAddress": address, "IPPrefixLen": int(prefix),
                                      "Gateway": link["Gateway"], "MacAddress": link["Mac"],
                                      "Aliases": [ep["Name"], ep["Hostname"]]}
        ports: dict = {}
        for port in ep.get("Ports") or []:
            ports.setdefault(f"{port['container_port']}/{port['proto']}", None)
        for b in ep.get("Bound") or []:
            key = f"{b['container_port']}/{b['proto']}"
            ports[key] = (ports.get(key) or []) + [{"HostIp": b["host_ip"] or "0.0.0.0",
                                                   "HostPort": str(b["host_port"])}]
        first = next(iter(networks.values()), {})
        return {"Networks": networks, "Ports": ports, "IPAddress": first.get("IPAddress", ""),
                "Gateway": first.get("Gateway", ""), "MacAddress": first.get("MacAddress", ""),
                "SandboxKey": f"/run/netns/{ep['Netns']}" if ep.get("Keeper") or ep.get("Bound") else ""}

    def host_port(self, container_id: str, container_port: int, proto: str = "tcp") -> int | None:
        """The host port a container's port is published on while it runs (``docker port``)."""
        ep = self.endpoint(container_id) or {}
        for b in ep.get("Bound") or []:
            if b["container_port"] == int(container_port) and b["proto"] == proto:
                return b["host_port"]
        return None


class NetStart:
    """What ``Networks.start`` made; ``started`` hands it to the keeper, ``abort`` undoes it."""

    def __init__(self, networks: Networks, container_id: str, sockets, bound: list[dict]):
        self.networks, self.container_id, self.sockets, self.bound = networks, container_id, sockets, bound

    def started(self, monitor_pid: int, monitor_start: int) -> None:
        try:
            self.networks._spawn_keeper(self.container_id, self.sockets, self.bound,
                                        (monitor_pid, monitor_start))
        finally:
            self.close()

    def abort(self) -> None:
        self.close()
        with contextlib.suppress(EngineError):
            self.networks.teardown(self.container_id)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []


def spawn_keeper(plan: dict, fds: list[int]) -> int:
    """fork, setsid, fork: the keeper (``engine.net.keeper``) is init's child, never our zombie,
    and outlives us. Its pid."""
    argv = [sys.executable, "-I", "-S", "-c", KEEPER_LAUNCHER, json.dumps(plan), ",".join(map(str, fds))]
    env = dict(os.environ)
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - child side
        try:
            os.close(read_fd)
            os.setsid()
            grandchild = os.fork()
            if grandchild != 0:
                os.write(write_fd, str(grandchild).encode())
                os._exit(0)
            devnull = os.open(os.devnull, os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(devnull, target)
            for fd in fds:
                os.set_inheritable(fd, True)
            os.chdir("/")
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(127)
    os.close(write_fd)
    os.waitpid(child, 0)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    if not data:
        raise RuntimeFailure("could not start the network keeper")
    return int(data)


def _resolv_conf() -> str:
    """The host's resolv.conf without loopback nameservers (unreachable from a container)."""
    try:
        text = Path("/etc/resolv.conf").read_text()
    except OSError:
        text = ""
    lines = []
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == ["nameserver"] and len(fields) > 1 and \
                (fields[1].startswith("127.") or fields[1] == "::1"):
            continue
        lines.append(line)
    if not any(line.split()[:1] == ["nameserver"] for line in lines):
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"


def _matches(net: dict, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "name":
            if not any(v in net["Name"] for v in values):
                return False
        elif key == "id":
            if not any(net["Id"].startswith(v) for v in values):
                return False
        elif key == "driver":
            if net["Driver"] not in values:
                return False
        elif key == "label":
            if not labels_match(net["Labels"], values):
                return False
        elif key == "type":
            builtin = net.get("Builtin", False)
            if not any((v == "builtin") == builtin for v in values):
                return False
        else:
            raise InvalidArgument(f"invalid filter {key!r}")
    return True

