"""A simulated reboot, then ``python -m engine boot`` (what the systemd unit runs): what
Docker restores runs again with its ports and networks, the rest stays stopped, and
nothing the previous boot left is still there."""

from __future__ import annotations

import subprocess

import pytest

from engine.containers import exec as ex
from engine.net.networks import Networks, link_exists, netns_exists
from tests.support.containers import wait_for
from tests.support.faults_restore import (
    HTTPD,
    check_clean,
    cli,
    engine_mounts,
    fetch,
    owned_engine,
    simulate_reboot,
)

SLEEPER = ["sleep", "600"]


@pytest.fixture
def engine():
    yield from owned_engine()


def idle_rules(net: dict) -> list[str]:
    return [line for table in ("filter", "nat")
            for line in subprocess.run(["iptables", "-w", "5", "-t", table, "-S"], capture_output=True,
                                       text=True).stdout.splitlines()
            if f"berth:{net['Id'][:12]}" in line]


def status(eng, name: str) -> str:
    return eng.inspect(name)["State"]["Status"]


def test_boot_after_a_reboot_restores_what_docker_would(engine):
    eng = engine
    nets = Networks(eng.config)
    nets.create("appnet")
    web, _ = eng.run("test/busybox", HTTPD, name="web", restart="always", network="appnet", publish=["8080"])
    api, _ = eng.run("test/busybox", HTTPD, name="api", restart="unless-stopped", network="appnet",
                     publish=["8080"])
    eng.run("test/busybox", SLEEPER, name="paused-by-user", restart="unless-stopped", network="appnet")
    eng.stop("paused-by-user", timeout=1)
    eng.run("test/busybox", SLEEPER, name="always-stopped", restart="always")
    eng.stop("always-stopped", timeout=1)
    eng.run("test/busybox", SLEEPER, name="plain", network="appnet")
    idle = nets.create("idle")  # no container: after the "crash" its bridge is gone, its rules not
    eng.run("test/busybox", SLEEPER, name="flaky", restart="on-failure:3")
    done, _ = eng.run("test/busybox", ["true"], name="done", restart="on-failure")
    eng.wait("done")
    fetch(nets.host_port(web.id, 8080))
    plain_netns = nets.endpoint(eng.resolve("plain"))["Netns"]

    simulate_reboot(eng)
    assert netns_exists(plain_netns)  # left by the "crash": boot must clear it
    idle_bridge = idle["Options"]["com.docker.network.bridge.name"]
    subprocess.run(["ip", "link", "del", idle_bridge], check=True)
    assert idle_rules(idle)
    found = cli(eng.config, "system", "check").stdout
    assert f"network idle: iptables rules are left for its bridge {idle_bridge}" in found
    assert engine_mounts(eng.config) == []

    out = cli(eng.config, "boot")
    assert out.returncode == 0, out.stderr
    started = sorted(line.split(": ", 1)[1] for line in out.stdout.splitlines() if line.startswith("started: "))
    assert started == ["always-stopped", "api", "flaky", "web"]

    for name in ("web", "api", "flaky", "always-stopped"):
        assert status(eng, name) == "running", name
    for name in ("paused-by-user", "plain", "done"):
        assert status(eng, name) == "exited", name
    assert eng.inspect("plain")["State"]["ExitCode"] == 255  # killed by the "reboot"
    # Published ports and networks came back: the host reaches both, and api reaches web by name.
    assert "hello from" in fetch(nets.host_port(web.id, 8080))
    assert "hello from" in fetch(nets.host_port(api.id, 8080))
    settings = eng.inspect("api")["NetworkSettings"]["Networks"]
    assert settings["appnet"]["IPAddress"].startswith("10.")
    reply = wait_for(lambda: (r := ex.exec_run(eng, "api", ["wget", "-qO-", "http://web:8080/"])).exit_code == 0 and r)
    assert b"hello from" in reply.stdout
    # The stopped ones hold nothing on the host.
    assert not netns_exists(plain_netns)
    for name in ("plain", "paused-by-user"):
        ep = nets.endpoint(eng.resolve(name))
        assert not netns_exists(ep["Netns"]) and ep["Bound"] == [] and not ep["Keeper"]
        assert not any(link_exists(link["Veth"]) for link in ep["Networks"].values())
    assert idle_rules(idle) == []
    check_clean(eng.config)
    idler, _ = eng.run("test/busybox", HTTPD, name="idler", network="idle", publish=["8080"])
    assert "hello from" in fetch(nets.host_port(idler.id, 8080))  # its bridge and rules are back

    again = cli(eng.config, "boot")  # idempotent: what runs is left alone
    assert again.returncode == 0 and "started:" not in again.stdout, again.stdout
    assert "hello from" in fetch(nets.host_port(web.id, 8080))


def test_on_failure_counts_its_retries_across_boots(engine):
    eng = engine
    eng.run("test/busybox", SLEEPER, name="flaky", restart="on-failure:2")
    for expected in ("running", "running"):
        simulate_reboot(eng)
        assert cli(eng.config, "boot").returncode == 0
        assert status(eng, "flaky") == expected
    c = eng.get("flaky")
    from engine.containers.state import update_state

    update_state(str(c.dir), RestartCount=2)  # its retries used up
    simulate_reboot(eng)
    assert "started:" not in cli(eng.config, "boot").stdout
    assert status(eng, "flaky") == "exited"
    check_clean(eng.config)


def test_the_systemd_unit_runs_boot_once_at_start():
    from pathlib import Path

    unit = (Path(__file__).resolve().parent.parent.parent / "deploy/systemd/berth-engine-restore.service").read_text()
    assert "Type=oneshot" in unit and "-m engine boot" in unit and "RemainAfterExit=yes" in unit
