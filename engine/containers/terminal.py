"""An interactive terminal in a running container, held by the caller (a websocket).

``engine.containers.exec.exec_tty`` gives the pty to the container's monitor, which reads it as fast
as the process writes and drops an attached client that falls 4 MiB behind: right for
``exec -it`` that may detach, wrong for a browser tab that must be able to say "wait".
Here the caller owns the pty, so not reading it is real flow control: the kernel's pty
buffer fills and the process blocks on its next write (``yes`` stops, nothing grows).

How: ``runc exec -t`` in the foreground on a pty we allocate. runc puts our pty slave in
raw mode, makes the container's own pty and copies between the two; it exits with the
process's exit status. It runs under ``setsid -c`` so our slave is its controlling
terminal: a resize of our master (``TIOCSWINSZ``) sends it SIGWINCH, which it passes on
to the container's pty, and closing our master hangs it up (SIGHUP, which it forwards to
the process). So closing the terminal ends the exec, and so does our process dying.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

from engine import events
from engine.containers.exec import _running, _write_process
from engine.containers.manager import Containers
from engine.errors import InvalidArgument

SETSID = "/usr/bin/setsid"
MAX_COLUMNS, MAX_ROWS = 1000, 500
SHELLS = ("/bin/bash", "/bin/sh", "/bin/ash")


def check_size(cols, rows) -> tuple[int, int]:
    try:
        cols, rows = int(cols), int(rows)
    except (TypeError, ValueError):
        raise InvalidArgument("the terminal size must be whole numbers") from None
    if not (1 <= cols <= MAX_COLUMNS and 1 <= rows <= MAX_ROWS):
        raise InvalidArgument(f"the terminal size must be 1-{MAX_COLUMNS} columns and 1-{MAX_ROWS} rows")
    return cols, rows


def default_shell(rootfs: Path) -> str:
    """/bin/bash when the image has it, else /bin/sh (what Portainer users pick by hand)."""
    from engine.base.inroot import Root

    # The rootfs is the container's: a symlink resolves inside it, not on the host.
    try:
        with Root(rootfs) as root:
            for shell in SHELLS:
                if root.exists(shell, follow_last=False):
                    return shell
    except OSError:
        pass  # no rootfs to look in
    return "/bin/sh"


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class TerminalSession:
    """A process with a TTY in a container. ``fd`` is the pty master (non-blocking):
    read output from it, write input to it. ``close()`` ends the process."""

    def __init__(self, containers: Containers, ref: str, command: list[str] | None = None, *,
                 user: str | None = None, cols: int = 80, rows: int = 24, env: list[str] | None = None):
        cols, rows = check_size(cols, rows)
        container = _running(containers, ref)
        if not command:
            command = [default_shell(Path(container.config["Rootfs"]))]
        self.containers = containers
        self.container_id, self.container_name = container.id, container.name
        self.command = list(command)
        self.user = user or container.config["Config"].get("User") or "root"
        self.exec_id, process_path = _write_process(container, self.command, user=user, workdir=None,
                                                    env=env, tty=True)
        self.pid_file = process_path.with_suffix(".pid")
        master, slave = pty.openpty()
        _set_size(master, cols, rows)
        argv = [SETSID, "-c"] + containers.runtime.base() + [
            "exec", "-t", "--pid-file", str(self.pid_file), "--process", str(process_path), container.id]
        events.emit(containers.config, "container", "exec_create", container.id,
                    {"name": container.name, "execID": self.exec_id, "execCommand": " ".join(self.command)})
        try:
            self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        except OSError:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self.fd = master
        self.exit_code: int | None = None
        events.emit(containers.config, "container", "exec_start", container.id,
                    {"name": container.name, "execID": self.exec_id})

    def resize(self, cols: int, rows: int) -> None:
        cols, rows = check_size(cols, rows)
        if self.fd >= 0:
            _set_size(self.fd, cols, rows)  # the kernel sends runc SIGWINCH

    def read(self, size: int = 65536) -> bytes:
        """Output; b"" when the process has ended; raises BlockingIOError when none is ready."""
        try:
            return os.read(self.fd, size)
        except OSError as exc:
            if isinstance(exc, BlockingIOError):
                raise
            return b""  # EIO: the other side of the pty is closed

    def write(self, data: bytes) -> int:
        """Input; how much the pty took (it may take less when the process does not read)."""
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0
        except OSError:
            return len(data)  # the process is gone: drop it

    def poll(self) -> int | None:
        if self.exit_code is None:
            code = self.process.poll()
            if code is not None:
                self._ended(code)
        return self.exit_code

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            self._ended(self.process.wait(timeout))
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def _ended(self, code: int) -> None:
        if self.exit_code is not None:
            return
        self.exit_code = code if code >= 0 else 128 - code
        try:
            events.emit(self.containers.config, "container", "exec_die", self.container_id,
                        {"name": self.container_name, "execID": self.exec_id, "exitCode": self.exit_code})
        except OSError:
            pass

    def hangup(self) -> None:
        """Close our side of the pty: SIGHUP to runc, which forwards it to the process.
        Instant (no waiting): safe to call from an event loop."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def close(self, grace: float = 2.0) -> int | None:
        """End the process (hang up its terminal, then kill it) and free the pty."""
        self.hangup()
        if self.wait(grace) is None:  # the process ignores SIGHUP: kill it, then runc
            self._kill_exec()
            self.process.kill()
            self.wait(5)
        for path in (self.pid_file, self.pid_file.with_suffix(".json")):
            try:
                path.unlink()
            except OSError:
                pass
        return self.exit_code

    def _kill_exec(self) -> None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                in_container = self.container_id in f.read()
        except OSError:
            return
        if in_container:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def __del__(self):  # a session nobody closed must not keep a process
        if getattr(self, "fd", -1) >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


def open_session(containers: Containers, ref: str, command: list[str] | None = None, **options) -> TerminalSession:
    return TerminalSession(containers, ref, command, **options)


def wait_gone(session: TerminalSession, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while session.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return session.exit_code is not None
