"""The monitor fork server: after the first start, monitors are forked by the run root's
server; they are init's, not the server's, and outlive it; a dead or stale server is never
trusted (the next start goes the plain way and brings a new server); the socket is its
owner's only; an idle server leaves. Real runc and monitors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from engine.base.proc import process_start_time
from engine.supervisor import launcher as monitors
from engine.supervisor import servers
from tests.support.containers import wait_for

SLEEP = ["sleep", "600"]


def server_pid(eng) -> int | None:
    return servers.running(monitors.forkserver_paths(eng.config.run_root)[1])


def monitor_of(eng, ref) -> int:
    return eng.get(ref).state["MonitorPid"]


def cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_monitors_are_forked_by_the_server_after_the_first_start(engine):
    first, _ = engine.run("test/busybox", SLEEP, name="first")
    assert b"monitor.run_main" in cmdline(monitor_of(engine, first.id))  # the plain way
    assert wait_for(lambda: server_pid(engine) is not None, 10), "no fork server came up"
    second, _ = engine.run("test/busybox", SLEEP, name="second")
    forked = monitor_of(engine, second.id)
    assert b"forkserver" in cmdline(forked)
    assert parent(forked) != server_pid(engine)  # init's (or a subreaper's), not the server's
    assert engine.inspect("second")["State"]["Running"]
    _, code = engine.run("test/busybox", ["sh", "-c", "exit 3"], detach=False, remove=True)
    assert code == 3


def test_monitors_outlive_their_server_and_a_dead_one_is_replaced(engine):
    engine.run("test/busybox", SLEEP, name="warm")
    assert wait_for(lambda: server_pid(engine) is not None, 10)
    old_server = server_pid(engine)
    forked, _ = engine.run("test/busybox", SLEEP, name="forked")
    os.kill(old_server, signal.SIGKILL)  # its socket file stays behind: stale
    assert wait_for(lambda: process_start_time(old_server) is None, 5)
    assert engine.inspect("forked")["State"]["Running"]
    engine.stop("forked", timeout=1)
    assert engine.inspect("forked")["State"]["ExitCode"] == 137
    after, _ = engine.run("test/busybox", SLEEP, name="after")  # not through the dead server
    assert b"monitor.run_main" in cmdline(monitor_of(engine, after.id))
    assert wait_for(lambda: server_pid(engine) not in (None, old_server), 10)
    again, _ = engine.run("test/busybox", SLEEP, name="again")
    assert b"forkserver" in cmdline(monitor_of(engine, again.id))


def test_a_failed_start_through_the_server_is_a_clear_error(engine):
    engine.run("test/busybox", SLEEP, name="warm")
    assert wait_for(lambda: server_pid(engine) is not None, 10)
    with pytest.raises(Exception, match="no-such-command"):
        engine.run("test/busybox", ["no-such-command"], name="broken")
    assert engine.inspect("broken")["State"]["Status"] == "created"


def test_the_socket_is_for_its_owner_only(engine):
    engine.run("test/busybox", SLEEP, name="warm")
    assert wait_for(lambda: server_pid(engine) is not None, 10)
    sock_path, _ = monitors.forkserver_paths(engine.config.run_root)
    assert oct(sock_path.stat().st_mode & 0o777) == "0o600"
    pid = os.fork()
    if pid == 0:  # as nobody, try to ask the server for a monitor
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            client = socket.socket(socket.AF_UNIX)
            client.connect(str(sock_path))
        except PermissionError:
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "another user reached the fork server"


def test_an_idle_server_leaves_and_removes_its_socket(tmp_path):
    sock, lock = tmp_path / "fs.sock", tmp_path / "fs.lock"
    server = subprocess.Popen([sys.executable, "-I", "-S", "-c", monitors.FORKSERVER_LAUNCHER,
                               str(sock), str(lock), "0.5"])
    try:
        assert wait_for(sock.exists, 10)
        # A second server for the same lock leaves at once: one server per run root.
        second = subprocess.run([sys.executable, "-I", "-S", "-c", monitors.FORKSERVER_LAUNCHER,
                                 str(sock), str(lock), "60"], timeout=10)
        assert second.returncode == 0
        assert server.wait(10) == 0
        assert not sock.exists()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_stop_servers_ends_the_server_not_the_containers(engine):
    engine.run("test/busybox", SLEEP, name="warm")
    assert wait_for(lambda: server_pid(engine) is not None, 10)
    forked, _ = engine.run("test/busybox", SLEEP, name="forked")
    servers.stop_servers(engine.config.run_root)
    assert wait_for(lambda: server_pid(engine) is None, 5)
    time.sleep(0.2)
    assert engine.inspect("forked")["State"]["Running"]
