"""The monitor fork server: a lean interpreter with the monitor loaded that forks one
monitor per container start.

Starting a monitor the plain way (``engine.supervisor.launcher.spawn_monitor``) costs a fresh
``python -I -S`` and its imports, about 20 ms of CPU that on a small machine is taken from
runc while it starts the container. Forked from here, a monitor costs a fork. It is the
same monitor either way: nobody's child but init's, its own session, a child subreaper.

``engine.supervisor.launcher`` starts one server per engine run root and version of this code (the
socket's name carries the version, so after an upgrade the old server is never asked
again); a server exits after ``IDLE_SECONDS`` without a request. Like the monitor it runs
as ``python -I -S`` with the engine's parent directory on sys.path, standard library only.

Protocol (a unix socket only its owner may use): the server accepts and writes ``READY``;
the client writes ``<spec path>\\n<stderr path>\\n``; the monitor forked for it answers on
that connection as it answers a plain start (``monitor.report``). A client that gets no
``READY`` knows nothing was started and starts the monitor the plain way.
"""

from __future__ import annotations

import marshal
import os
import socket

from engine.supervisor import monitor, servers

IDLE_SECONDS = 300
READY = b"READY\n"
MAX_REQUEST = 8192


def serve(socket_path: str, lock_path: str, idle_seconds: float = IDLE_SECONDS) -> int:
    lock_fd = servers.take_lock(lock_path)
    if lock_fd is None:
        return 0  # another server has this run root and version
    os.chdir("/")
    monitor._late_imports()
    import ctypes  # noqa: F401  (every monitor's prctl: loaded here once, not per fork)

    server = servers.listen_owner_only(socket_path)
    server.settimeout(idle_seconds)
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                return 0
            with conn:
                request = _request(conn)
                if request is None:
                    continue
                pid = os.fork()
                if pid == 0:
                    server.close()
                    os.close(lock_fd)  # the lock is the server's alone
                    _become_monitor(conn, *request)
                os.waitpid(pid, 0)
    finally:
        servers.unlink_quietly(socket_path)


def _request(conn: socket.socket) -> tuple[str, str] | None:
    """(spec path, stderr path) from a client of our own user, or None."""
    if not servers.peer_is_owner(conn):
        return None
    conn.settimeout(5)
    data = b""
    try:
        conn.sendall(READY)
        while data.count(b"\n") < 2 and len(data) < MAX_REQUEST:
            chunk = conn.recv(MAX_REQUEST)
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    parts = data.decode(errors="replace").split("\n")
    if len(parts) < 3 or not parts[0] or not parts[1]:
        return None
    conn.setblocking(True)
    return parts[0], parts[1]


def _become_monitor(conn: socket.socket, spec_path: str, err_path: str) -> None:
    """In the forked child: detach as ``spawn_monitor``'s child does, launch runc and
    supervise. Never returns."""
    code = 127
    try:
        monitor.detach(err_path)
        with open(spec_path, "rb") as f:
            spec = marshal.load(f)
        listener = monitor.listen_unix(spec["attach_socket"])
        info = monitor.launch(spec)
        code = monitor.supervise(spec, info, conn.detach(), listener.detach())
    except BaseException as exc:
        try:
            conn.sendall(f"error could not start the monitor: {exc}".encode())
        except OSError:
            pass
    os._exit(code)


def main(argv: list[str]) -> int:
    """``forkserver.py SOCKET LOCK [IDLE_SECONDS]``"""
    return serve(argv[1], argv[2], *(float(value) for value in argv[3:4]))

