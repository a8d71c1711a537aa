"""Starting a container's monitor: through the run root's fork server when one answers
(a fork), else the plain way (a fresh interpreter), starting a fork server for next time.

Either way the monitor is nobody's child but init's (or the nearest subreaper's), in its
own session, and answers once: ``["ok", init pid, monitor pid, monitor start, StartedAt]``
or ``["error", message]``. See ``engine/supervisor/forkserver.py`` and ``engine/supervisor/monitor.py``.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from engine.supervisor import monitor, servers

monitor._late_imports()  # the engine side uses its socket helpers too

HERE = Path(__file__).resolve().parent
REPO_DIR = HERE.parent.parent
# The monitor runs as a lean interpreter (``-I -S``, standard library only) importing the
# same module the engine does, engine.supervisor.monitor (its bytecode is cached).
MONITOR_LAUNCHER = (f"import sys; sys.path.append({str(REPO_DIR)!r}); "
                    "from engine.supervisor import monitor; monitor.run_main()")
FORKSERVER_LAUNCHER = (f"import sys; sys.path.append({str(REPO_DIR)!r}); "
                       "from engine.supervisor import forkserver; sys.exit(forkserver.main(sys.argv))")
# What the monitor and the fork server run: a change to any is a new fork server.
ENGINE = REPO_DIR / "engine"
MONITOR_SOURCES = [HERE / "monitor.py", HERE / "forkserver.py", HERE / "servers.py", HERE / "__init__.py",
                   ENGINE / "__init__.py", ENGINE / "containers" / "__init__.py", ENGINE / "containers" / "state.py",
                   ENGINE / "logs" / "__init__.py", ENGINE / "logs" / "writer.py",
                   *sorted((ENGINE / "base").glob("*.py"))]
READY = b"READY\n"  # as forkserver.READY (not imported: that module runs top-level only)


def start_monitor(run_root: Path, spec: dict, spec_path: Path, err_path: Path) -> list[str]:
    reply = _through_forkserver(run_root, spec_path, err_path)
    if reply is None:
        start_forkserver(run_root)
        reply = spawn_monitor(spec, spec_path, err_path)
    return reply


def spawn_monitor(spec: dict, spec_path: Path, err_path: Path) -> list[str]:
    """fork, setsid, fork again; launch runc there, then exec a fresh lean interpreter running
    engine/supervisor/monitor.py, so that runc and Python start in parallel. The forked copies run only
    a few system calls' worth of Python before exec. The attach socket is made here, so
    clients can connect as soon as we return."""
    listener = monitor.listen_unix(spec["attach_socket"])
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child side
        try:
            os.close(read_fd)
            monitor.detach(str(err_path))
            launched = monitor.launch(spec)
            launched.update(sync=write_fd, listen=listener.fileno())
            for key, value in launched.items():
                if key not in ("pid", "console_path"):
                    os.set_inheritable(value, True)
            fds = ",".join(f"{k}={v}" for k, v in launched.items())
            os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", MONITOR_LAUNCHER, str(spec_path), fds])
        except BaseException as exc:
            try:
                os.write(write_fd, f"error could not start the monitor: {exc}".encode())
            finally:
                os._exit(127)
        os._exit(127)
    os.close(write_fd)
    listener.close()
    os.waitpid(pid, 0)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    return _reply(b"".join(chunks), err_path)


def _reply(data: bytes, err_path: Path) -> list[str]:
    text = data.decode(errors="replace")
    if not text:
        try:
            detail = Path(err_path).read_text().strip().splitlines()[-1]
        except (OSError, IndexError):
            detail = "no message"
        return ["error", f"the monitor died while starting: {detail}"]
    if text.startswith("error "):
        return ["error", text[6:]]
    return text.split()


# ---------------------------------------------------------------- the fork server

def forkserver_paths(run_root: Path) -> tuple[Path, Path]:
    """Named after the monitor's code and the interpreter: a new version, a new server."""
    version = servers.version(*MONITOR_SOURCES, extra=sys.executable)
    return run_root / f"forkserver-{version}.sock", run_root / f"forkserver-{version}.lock"


def _through_forkserver(run_root: Path, spec_path: Path, err_path: Path) -> list[str] | None:
    """The monitor's answer, or None when no server took the request (nothing started)."""
    sock_path, _ = forkserver_paths(run_root)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(5)
        try:
            sock.connect(str(sock_path))
            greeting = b""
            while len(greeting) < len(READY) and (chunk := sock.recv(len(READY) - len(greeting))):
                greeting += chunk
        except OSError:
            return None
        if greeting != READY:
            return None
        sock.settimeout(None)  # runc may take its time on a loaded machine, as a plain start
        sock.sendall(f"{spec_path}\n{err_path}\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return _reply(b"".join(chunks), err_path)
    finally:
        sock.close()


def start_forkserver(run_root: Path) -> None:
    """Start this run root's fork server in the background (it is init's child, like a
    monitor)."""
    sock_path, lock_path = forkserver_paths(run_root)
    run_root.mkdir(parents=True, exist_ok=True)
    servers.spawn_detached([sys.executable, "-I", "-S", "-c", FORKSERVER_LAUNCHER, str(sock_path), str(lock_path)],
                           str(run_root / "forkserver.err"))
