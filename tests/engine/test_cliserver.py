"""``python -m engine`` through the run root's command server: the first command runs in its
own process and brings a server up; the next ones run in a child of the server with the
client's output, error, input, exit code, working directory, environment and umask; Ctrl-C
and a killed client reach the command; an interactive shell works on the client's terminal;
a dead server is never trusted; the socket is its owner's only. Real runc and containers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.supervisor import cliclient, servers
from tests.engine.test_exec import _drive
from tests.support.containers import cleanup, make_engine, wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(monkeypatch):
    monkeypatch.setenv("BERTH_ENGINE_CLI_SERVER", "1")  # the test session turns it off
    eng, _ = make_engine()
    yield eng
    cleanup(eng)  # stops the run root's servers too


def argv(engine, *args) -> list[str]:
    return [sys.executable, "-m", "engine", "--root", str(engine.config.root),
            "--run-root", str(engine.config.run_root), *args]


def cli(engine, *args, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("cwd", REPO)
    return subprocess.run(argv(engine, *args), capture_output=True, text=True, timeout=60, **kwargs)


def server_pid(engine) -> int | None:
    _, lock = cliclient.server_paths(str(engine.config.run_root))
    return servers.running(Path(lock))


def server_children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


@pytest.fixture
def served(engine):
    """The engine with its command server up (the first command started it)."""
    assert cli(engine, "images").returncode == 0
    sock, _ = cliclient.server_paths(str(engine.config.run_root))
    wait_for(lambda: server_pid(engine) is not None and os.path.exists(sock), 20)  # loaded, listening
    return engine


def test_output_error_and_exit_code_come_back_from_the_servers_child(served):
    proc = subprocess.Popen(argv(served, "run", "--rm", "test/busybox", "sh", "-c",
                                 "echo out; echo err >&2; sleep 1; exit 3"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert wait_for(lambda: server_children(server_pid(served)), 10), "the command did not run in the server"
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (3, "out\n", "err\n")
    bad = cli(served, "run", "--memory", "12 parsecs", "test/busybox", "true")
    assert bad.returncode == 1 and "12 parsecs" in bad.stderr
    usage = cli(served, "frobnicate")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_working_directory_environment_umask_and_input_are_the_clients(served, tmp_path):
    saved = subprocess.run(["sh", "-c", "umask 077; exec \"$@\"", "sh",
                            *argv(served, "save", "-o", "relative.tar", "test/busybox")],
                           cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)),
                           capture_output=True, text=True, timeout=60)
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "relative.tar").stat().st_mode & 0o077 == 0
    echoed = cli(served, "run", "--rm", "-e", "GREETING", "test/busybox", "sh", "-c", "echo $GREETING",
                 env=dict(os.environ, GREETING="from the client"))
    assert echoed.stdout == "from the client\n"
    piped = subprocess.Popen(argv(served, "run", "--rm", "-i", "test/busybox", "tr", "a-z", "A-Z"), cwd=REPO,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert wait_for(lambda: server_children(server_pid(served)), 10)  # waiting for our input, in the server
    assert piped.communicate("shout\n", timeout=30)[0] == "SHOUT\n"


def test_ctrl_c_and_a_killed_client_reach_the_command(served):
    served.run("test/busybox", ["sh", "-c", "while true; do echo tick; sleep 0.1; done"], name="ticker")
    server = server_pid(served)
    follow = subprocess.Popen(argv(served, "logs", "-f", "ticker"), stdout=subprocess.PIPE, cwd=REPO)
    assert follow.stdout.readline() == b"tick\n"
    assert server_children(server)
    follow.send_signal(signal.SIGINT)
    assert follow.wait(10) == 130
    assert wait_for(lambda: not server_children(server), 10)

    follow = subprocess.Popen(argv(served, "logs", "-f", "ticker"), stdout=subprocess.PIPE, cwd=REPO)
    assert follow.stdout.readline() == b"tick\n"
    follow.kill()
    follow.wait()
    assert wait_for(lambda: not server_children(server), 10), "the command outlived its client"


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_ctrl_z_stops_the_command_with_its_client_and_fg_continues_both(served):
    served.run("test/busybox", ["sh", "-c", "while true; do echo tick; sleep 0.1; done"], name="ticker")
    follow = subprocess.Popen(argv(served, "logs", "-f", "ticker"), stdout=subprocess.PIPE, cwd=REPO)
    assert follow.stdout.readline() == b"tick\n"
    [child] = server_children(server_pid(served))
    follow.send_signal(signal.SIGTSTP)
    assert wait_for(lambda: state(follow.pid) == "T" and state(child) == "T", 5)
    follow.send_signal(signal.SIGCONT)
    assert wait_for(lambda: state(follow.pid) != "T" and state(child) != "T", 5)
    follow.send_signal(signal.SIGINT)
    assert follow.wait(10) == 130


def test_an_interactive_shell_runs_on_the_clients_terminal(served):
    code, out = _drive(argv(served, "run", "-it", "--rm", "test/busybox", "sh"), [
        (b"# ", b"stty size; echo hi-$((40+2))\r"),
        (b"hi-42", b"exit 5\r"),
    ])
    assert code == 5
    assert b"30 90" in out  # the client's window size


def test_a_dead_server_is_never_trusted_and_is_replaced(served):
    old = server_pid(served)
    os.kill(old, signal.SIGKILL)  # its socket file stays behind
    wait_for(lambda: server_pid(served) is None, 5)
    listed = cli(served, "ps", "-a")
    assert listed.returncode == 0 and listed.stdout.startswith("CONTAINER ID")
    assert wait_for(lambda: server_pid(served) not in (None, old), 20)


def test_the_socket_is_its_owners_and_the_switch_turns_it_off(served, monkeypatch):
    sock, _ = cliclient.server_paths(str(served.config.run_root))
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
    servers.stop_servers(served.config.run_root)
    wait_for(lambda: server_pid(served) is None, 5)
    monkeypatch.setenv("BERTH_ENGINE_CLI_SERVER", "0")
    assert cli(served, "images").returncode == 0
    time.sleep(1)
    assert server_pid(served) is None
