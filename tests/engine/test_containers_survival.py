"""Containers outlive whatever started them; dead monitors are reported honestly; restart
policies are applied by the monitor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from engine.containers.manager import Containers
from tests.support.containers import all_leftovers, wait_for

COUNTER = ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done"]


def log_lines(eng: Containers, ref: str) -> int:
    return sum(1 for _ in eng.logs(ref))


def starter(eng: Containers, cmd: list[str], name: str) -> subprocess.Popen:
    """Another process that starts a container, prints its id and then idles (to be killed)."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from engine.config import EngineConfig
        from engine.containers.manager import Containers
        config = EngineConfig(Path({str(eng.config.root)!r}), Path({str(eng.config.run_root)!r}))
        c, _ = Containers(config).run("test/busybox", {cmd!r}, name={name!r})
        print(c.id, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    return proc


def cli_ps(eng: Containers) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "engine", "--root", str(eng.config.root), "--run-root",
                          str(eng.config.run_root), "ps", "-a", "--format", "json"],
                         capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_container_survives_its_starter_killed_and_keeps_logging(engine):
    proc = starter(engine, COUNTER, "survivor")
    container_id = proc.stdout.readline().strip()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = log_lines(engine, "survivor")
    wait_for(lambda: log_lines(engine, "survivor") > before + 5)
    # A fresh process (the CLI) finds it running.
    rows = cli_ps(engine)
    assert [(r["Id"], r["State"]) for r in rows] == [(container_id, "running")]
    assert engine.inspect("survivor")["State"]["Error"] == ""
    engine.stop("survivor", timeout=1)
    assert engine.inspect("survivor")["State"]["Status"] == "exited"


def test_exit_while_nobody_watches_is_recorded(engine):
    proc = starter(engine, ["sh", "-c", "sleep 0.5; echo bye; exit 5"], "lonely")
    proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    rows = cli_ps(engine)  # a new process, after the fact
    assert rows[0]["State"] == "exited" and rows[0]["Status"].startswith("Exited (5)")
    fresh = Containers(engine.config)
    state = fresh.inspect("lonely")["State"]
    assert state["ExitCode"] == 5 and state["Error"] == ""
    assert [r["log"] for r in fresh.logs("lonely")] == ["bye\n"]


def test_a_killed_monitor_is_reported_honestly(engine):
    c, _ = engine.run("test/busybox", COUNTER, name="orphan")
    monitor_pid = engine.inspect("orphan")["State"]["Pid"] and engine.get("orphan").state["MonitorPid"]
    os.kill(monitor_pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{monitor_pid}/status") or
             "zombie" in open(f"/proc/{monitor_pid}/status").read())
    state = Containers(engine.config).inspect("orphan")["State"]
    assert state["Status"] == "running" and "monitor died" in state["Error"]
    # The container dies too: it is recorded as exited, exit code unknown, and cleaned from runc.
    engine.runtime.kill(c.id, signal.SIGKILL, all_processes=True)
    wait_for(lambda: Containers(engine.config).inspect("orphan")["State"]["Status"] == "exited")
    state = engine.inspect("orphan")["State"]
    assert state["ExitCode"] == 255 and "exit code unknown" in state["Error"]
    engine.remove("orphan")
    assert all_leftovers(engine) == []


def test_restart_on_failure_with_a_limit(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "echo run; exit 3"], restart="on-failure:2")
    wait_for(lambda: engine.inspect(c.id)["State"]["Status"] == "exited" and
             engine.inspect(c.id)["RestartCount"] == 2, timeout=15)
    assert engine.inspect(c.id)["State"]["ExitCode"] == 3
    assert [r["log"] for r in engine.logs(c.id)] == ["run\n"] * 3
    # success is not a failure: no restart
    ok, _ = engine.run("test/busybox", ["true"], restart="on-failure")
    assert engine.wait(ok.id) == 0
    time.sleep(0.5)
    assert engine.inspect(ok.id)["RestartCount"] == 0
    assert engine.inspect(ok.id)["State"]["Status"] == "exited"


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_restart_always_until_stopped(engine, policy):
    c, _ = engine.run("test/busybox", ["sh", "-c", "echo up; sleep 0.2"], restart=policy)
    wait_for(lambda: engine.inspect(c.id)["RestartCount"] >= 2, timeout=15)
    engine.stop(c.id, timeout=1)
    info = engine.inspect(c.id)
    assert info["State"]["Status"] == "exited"
    count = info["RestartCount"]
    time.sleep(1.0)
    assert engine.inspect(c.id)["RestartCount"] == count  # a stop is final
    assert engine.inspect(c.id)["State"]["Status"] == "exited"


def test_no_restart_by_default(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "exit 1"])
    assert engine.wait(c.id) == 1
    time.sleep(0.5)
    assert engine.inspect(c.id)["RestartCount"] == 0


def test_auto_remove_when_detached(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "sleep 0.3"], remove=True)
    wait_for(lambda: all_leftovers(engine) == [], timeout=20)


def test_restore_after_every_monitor_died(engine):
    """As after a reboot: monitors and containers gone; restore starts what its policy asks."""
    always, _ = engine.run("test/busybox", COUNTER, restart="always", name="always")
    stopped, _ = engine.run("test/busybox", COUNTER, restart="unless-stopped", name="stopped")
    plain, _ = engine.run("test/busybox", COUNTER, name="plain")
    engine.stop("stopped", timeout=1)
    for c in (always, plain):
        os.kill(engine.get(c.id).state["MonitorPid"], signal.SIGKILL)
        engine.runtime.kill(c.id, signal.SIGKILL, all_processes=True)
    wait_for(lambda: all(engine.inspect(c)["State"]["Status"] == "exited" for c in ("always", "plain")))
    assert Containers(engine.config).restore() == [always.id]
    assert engine.inspect("always")["State"]["Status"] == "running"
    assert engine.inspect("stopped")["State"]["Status"] == "exited"
    assert engine.inspect("plain")["State"]["Status"] == "exited"
