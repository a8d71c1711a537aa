"""For the fault scenarios of restarts, killed monitors and clean-up (tests/faults/): an
engine of the test's own, the host network state around it, and the consistency check
run after every scenario."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from engine import events
from tests.support.containers import cleanup, make_engine, wait_for
from tests.support.networks import host_state, remove_all

REPO = Path(__file__).resolve().parent.parent.parent
HTTPD = ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]


def cli(config, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """``python -m engine`` on the test's engine, in a process of its own."""
    env = dict(os.environ, BERTH_ENGINE_CLI_SERVER="0", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "engine", "--root", str(config.root), "--run-root",
                           str(config.run_root), *args], capture_output=True, text=True, env=env,
                          input=input, timeout=120, cwd=str(REPO))


def check_clean(config) -> None:
    """``system check`` finds nothing wrong (what every scenario ends with)."""
    out = cli(config, "system", "check")
    assert out.returncode == 0, out.stdout + out.stderr


def owned_engine():
    """For a test module's fixture: an engine with a busybox image; afterwards nothing it
    made is left on the host (scoped to this engine: other tests may run beside it)."""
    eng, _ = make_engine()
    made: dict[str, set[str]] = {}
    try:
        yield eng
    finally:
        try:
            made = engine_host_objects(eng.config)
            remove_all(eng)
        finally:
            cleanup(eng)
    assert left_on_host(made) == {}


def engine_host_objects(config) -> dict[str, set[str]]:
    """The names of the host objects this engine's records name: bridges and their rule
    tags, containers' namespaces and veths."""
    from engine.net.networks import Networks

    if not (config.root / "networks").is_dir():
        return {}
    nets = Networks(config)
    out: dict[str, set[str]] = {"links": set(), "netns": set(), "tags": set()}
    for net in nets._records():
        out["links"].add(net["Bridge"])
        out["tags"].add(f"berth:{net['Id'][:12]}")
    for path in nets.endpoints.glob("*.json"):
        ep = nets.endpoint(path.stem) or {}
        out["netns"].add(ep.get("Netns", ""))
        out["links"] |= {link["Veth"] for link in (ep.get("Networks") or {}).values()}
    return out


def left_on_host(made: dict[str, set[str]]) -> dict[str, set[str]]:
    state = host_state()
    left = {"links": made.get("links", set()) & state["links"],
            "netns": made.get("netns", set()) & state["netns"],
            "rules": {r for r in state["rules"] if any(t in r for t in made.get("tags", ()))}}
    return {k: v for k, v in left.items() if v}


def fetch(port: int, timeout: float = 10.0) -> str:
    def get():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
        except OSError:
            return None
    return wait_for(get, timeout)


def fetch_once(port: int) -> str | None:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
    except OSError:
        return None


def kill_monitor(eng, ref: str) -> int:
    state = eng.get(ref).state
    os.kill(state["MonitorPid"], signal.SIGKILL)
    wait_for(lambda: not eng.monitor_alive(eng._load(eng.resolve(ref), reconcile=False)))
    return state["MonitorPid"]


def event_actions(config, container_id: str) -> list[str]:
    return [e["Action"] for e in events.read(config) if e["Actor"]["ID"] == container_id]


def engine_mounts(config) -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(str(config.root))]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def simulate_reboot(eng) -> None:
    """What a power cut does to the engine's processes and runtime state, short of the
    kernel's objects: every keeper, monitor and container process of this engine is
    killed (keepers first, so none tears anything down), the rootfs overlays are
    unmounted and the run root (a tmpfs after a real reboot) is removed. Network
    namespaces, veths, bridges and iptables rules are left as they were: ``boot`` has to
    cope with what a crash without a reboot leaves too."""
    import shutil

    from engine.base.proc import process_start_time
    from engine.net.networks import Networks
    from engine.supervisor.servers import stop_servers

    config = eng.config
    stop_servers(config.run_root)
    nets = Networks(config)
    for path in nets.endpoints.glob("*.json"):
        keeper = (nets.endpoint(path.stem) or {}).get("Keeper")
        if keeper and process_start_time(keeper[0]) == keeper[1]:
            os.kill(keeper[0], signal.SIGKILL)
    inits = []
    for container_id in eng.ids():
        state = eng._load(container_id, reconcile=False).state
        if state.get("MonitorPid") and process_start_time(state["MonitorPid"]) == state.get("MonitorStart"):
            os.kill(state["MonitorPid"], signal.SIGKILL)
        if state.get("Pid"):
            inits.append(state["Pid"])
        if (eng.runtime.root / container_id).exists():
            subprocess.run(eng.runtime.base() + ["kill", "--all", container_id, "KILL"], capture_output=True)
    wait_for(lambda: all(process_start_time(pid) is None for pid in inits), timeout=20)
    for point in sorted(engine_mounts(config), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(config.run_root)
