"""What the engine's two small servers share: the monitor fork server
(``engine/forkserver.py``) and the command-line server (``engine/cliserver.py``).

Each lives in the engine's run root, one per version of its code (the version is in its
file names, so after an upgrade an old server is never asked again and leaves when idle),
holds a lock file with its pid and start time (one server per name; ``stop_servers`` finds
them), and listens on a unix socket only its owner may use. Standard library only: the fork
server imports this as a top-level module.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
import zlib
from pathlib import Path

try:
    from engine.monitor import process_start_time
except ImportError:  # run as a top-level module beside monitor.py (in the fork server)
    from monitor import process_start_time

LOCK_PATTERNS = ("forkserver-*.lock", "cli-*.lock")


def version(*files: Path | str, extra: str = "") -> str:
    """Changes when any of ``files`` does (mtime and size), or ``extra``."""
    facts = [extra]
    for path in files:
        st = os.stat(path)
        facts.append(f"{st.st_mtime_ns}:{st.st_size}")
    return f"{zlib.crc32(' '.join(facts).encode()):08x}"


def take_lock(lock_path: str) -> int | None:
    """The lock's fd, with our pid and start time written in it; None when another server
    holds it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    me = os.getpid()
    os.ftruncate(fd, 0)
    os.write(fd, f"{me} {process_start_time(me)}\n".encode())
    return fd


def listen_owner_only(path: str) -> socket.socket:
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


def peer_is_owner(conn: socket.socket) -> bool:
    """The socket's mode already keeps others out; this is the second lock."""
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                    struct.calcsize("3i")))
    return uid == os.getuid()


def running(lock_path: Path) -> int | None:
    """The pid of the live server holding ``lock_path``, if any."""
    try:
        pid, start = (int(field) for field in lock_path.read_text().split())
    except (OSError, ValueError):
        return None
    return pid if process_start_time(pid) == start else None


def stop_servers(run_root: Path) -> None:
    """End the run root's servers (monitors and commands they started live on). For tests
    and benchmarks that remove the run root; servers otherwise leave by themselves."""
    for pattern in LOCK_PATTERNS:
        for lock_path in Path(run_root).glob(pattern):
            pid = running(lock_path)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
