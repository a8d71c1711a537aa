"""What the engine's two small servers share: the monitor fork server
(``engine/supervisor/forkserver.py``) and the command-line server (``engine/supervisor/cliserver.py``).

Each lives in the engine's run root, one per version of its code (the version is in its
file names, so after an upgrade an old server is never asked again and leaves when idle),
is started detached by whoever found none (``spawn_detached``), holds a lock file with its
pid and start time (one server per name; ``stop_servers`` finds them), and listens on a
unix socket only its owner may use.

Standard library only (the fork server's lean interpreter imports it), and light at
import: ``python -m engine`` loads it on every command, so what only servers or tests use
is imported where it is used.
"""

from __future__ import annotations

import os
import zlib

from engine.base.proc import process_start_time

LOCK_PATTERNS = ("forkserver-", "cli-")  # + version + ".lock"


def _start_time(pid: int) -> int | None:
    return process_start_time(pid)


def version(*files, extra: str = "") -> str:
    """Changes when any of ``files`` does (mtime and size), or ``extra``."""
    facts = [extra]
    for path in files:
        st = os.stat(path)
        facts.append(f"{st.st_mtime_ns}:{st.st_size}")
    return f"{zlib.crc32(' '.join(facts).encode()):08x}"


def spawn_detached(argv: list[str], err_path: str) -> bool:
    """Start ``argv`` in its own session as init's child (not ours: the intermediate child
    is reaped here), stdin and stdout on /dev/null, stderr appended to ``err_path``. False
    when ``err_path`` cannot be written (a server that cannot start is only a speed-up
    lost); a second server racing this one finds the lock held and leaves."""
    try:
        err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return False
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child side
        try:
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                       (os.POSIX_SPAWN_DUP2, err, 2)]
            os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        finally:
            os._exit(0)
    os.close(err)
    os.waitpid(pid, 0)
    return True


def take_lock(lock_path: str) -> int | None:
    """The lock's fd, with our pid and start time written in it; None when another server
    holds it."""
    import fcntl

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    me = os.getpid()
    os.ftruncate(fd, 0)
    os.write(fd, f"{me} {_start_time(me)}\n".encode())
    return fd


def listen_owner_only(path: str):
    """A listening unix socket at ``path``, mode 0600."""
    import socket

    try:
        os.unlink(path)  # a dead server's
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(previous)
    sock.listen(64)
    return sock


def unlink_quietly(path: str) -> None:
    """A leaving server's socket (its run root may be gone already)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def peer_is_owner(conn) -> bool:
    """The socket's mode already keeps others out; this is the second lock."""
    import socket
    import struct

    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                    struct.calcsize("3i")))
    return uid == os.getuid()


def running(lock_path) -> int | None:
    """The pid of the live server holding ``lock_path``, if any."""
    try:
        with open(lock_path) as f:
            pid, start = (int(field) for field in f.read().split())
    except (OSError, ValueError):
        return None
    return pid if _start_time(pid) == start else None


def stop_servers(run_root) -> None:
    """End the run root's servers (monitors and commands they started live on). For tests
    and benchmarks that remove the run root; servers otherwise leave by themselves."""
    import signal

    try:
        names = os.listdir(run_root)
    except OSError:
        return
    for name in names:
        if name.startswith(LOCK_PATTERNS) and name.endswith(".lock"):
            pid = running(os.path.join(run_root, name))
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
