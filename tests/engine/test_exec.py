"""exec with and without a TTY, through the API and through the CLI on a real pty;
``run -it`` gives an interactive shell."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from engine import events
from engine.containers import exec as ex
from engine.errors import Conflict
from engine.supervisor.monitor import F_EXIT, F_STDOUT
from tests.support.containers import wait_for

LOOP = ["sh", "-c", "while true; do sleep 0.1; done"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def running(engine):
    c, _ = engine.run("test/busybox", LOOP, name="box", env=["FROM_RUN=1"], workdir="/tmp")
    return engine, c


def read_until(conn, needle: bytes, timeout: float = 10) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while needle not in got:
        assert time.monotonic() < deadline, got
        kind, payload = conn.read()
        assert kind is not None, got
        if kind == F_STDOUT:
            got += payload
    return got


def test_exec_without_tty_separates_streams_and_returns_the_code(running):
    engine, c = running
    result = ex.exec_run(engine, "box", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    result = ex.exec_run(engine, "box", ["sh", "-c", "id -u; pwd; echo $FROM_RUN $EXTRA"],
                         user="app", workdir="/etc", env=["EXTRA=yes"])
    assert result.stdout == b"1000\n/etc\n1 yes\n"
    assert ex.exec_run(engine, "box", ["pwd"]).stdout == b"/tmp\n"  # the container's workdir
    assert ex.exec_run(engine, "box", ["cat"], input=b"piped").stdout == b"piped"


def test_exec_into_a_stopped_container_is_refused(engine):
    c = engine.create("test/busybox", ["true"])
    with pytest.raises(Conflict, match="not running"):
        ex.exec_run(engine, c.id, ["true"])
    with pytest.raises(Conflict, match="not running"):
        ex.exec_tty(engine, c.id, ["sh"])
    assert not (c.dir / "execs").exists()


def test_exec_with_tty_resize_detach_and_attach_again(running):
    engine, c = running
    exec_id, conn = ex.exec_tty(engine, "box", ["sh"])
    conn.resize(33, 101)
    time.sleep(0.1)
    conn.write(b"stty size; test -t 0 && echo TTY-$((40+2))\n")
    out = read_until(conn, b"TTY-42")
    assert b"33 101" in out
    assert ex.exec_inspect(engine, "box", exec_id)["Running"] is True
    conn.close()  # detach: the shell lives on in the monitor

    again = ex.exec_attach(engine, "box", exec_id)
    again.write(b"echo back-$((1+1))\n")
    read_until(again, b"back-2")
    again.write(b"exit 5\n")
    while True:
        kind, payload = again.read()
        if kind in (F_EXIT, None):
            break
    assert kind == F_EXIT and b'"ExitCode": 5' in payload
    wait_for(lambda: ex.exec_inspect(engine, "box", exec_id)["Running"] is False)
    assert ex.exec_inspect(engine, "box", exec_id)["ExitCode"] == 5
    died = [e for e in events.read(engine.config, filters={"event": ["exec_die"]})
            if e["Actor"]["Attributes"]["execID"] == exec_id]
    assert [e["Actor"]["Attributes"]["exitCode"] for e in died] == ["5"]


def _drive(argv: list[str], steps: list[tuple[bytes, bytes]], timeout: float = 20) -> tuple[int, bytes]:
    """Run ``argv`` on a new pty (as a terminal user would); for each (expect, send) wait for
    ``expect`` in the output, then type ``send``. Returns the exit code and all output."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 90, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        for expect, send in steps:
            while expect not in out:
                assert time.monotonic() < deadline, out
                ready, _, _ = select.select([master], [], [], 0.5)
                if ready:
                    try:
                        out += os.read(master, 65536)
                    except OSError:
                        break
            os.write(master, send)
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
        return proc.wait(timeout=max(1, deadline - time.monotonic())), out
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def _cli(engine) -> list[str]:
    return [sys.executable, "-m", "engine", "--root", str(engine.config.root),
            "--run-root", str(engine.config.run_root)]


def test_cli_exec_it_is_an_interactive_shell(running):
    engine, c = running
    code, out = _drive(_cli(engine) + ["exec", "-it", "box", "sh"], [
        (b"# ", b"stty size; echo $((6*7))\r"),
        (b"42", b"exit 4\r"),
    ])
    assert code == 4
    assert b"30 90" in out  # our window size reached the container's terminal


def test_cli_run_it_is_an_interactive_shell(engine):
    code, out = _drive(_cli(engine) + ["run", "-it", "--rm", "test/busybox", "sh"], [
        (b"# ", b"echo hello-$((2+3))\r"),
        (b"hello-5", b"exit 2\r"),
    ])
    assert code == 2
    wait_for(lambda: engine.list(all=True) == [])


def test_cli_exec_without_tty(running):
    engine, c = running
    out = subprocess.run(_cli(engine) + ["exec", "-u", "app", "box", "sh", "-c", "id -un; echo e >&2; exit 6"],
                         capture_output=True, text=True, cwd=REPO)
    assert (out.returncode, out.stdout, out.stderr) == (6, "app\n", "e\n")
