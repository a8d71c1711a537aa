"""Files a reader sees whole, old or new (a temp file beside the target and a rename), and
flock'd lock files: the engine's one implementation of each.

Standard library only and light at import: the monitor loads it while runc starts.
"""

from __future__ import annotations

import _thread
import fcntl
import os


def fsync_dir(path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data: bytes, *, fsync: bool, mode: int = 0o644) -> None:
    """``data`` into ``path`` through a temp file beside it and a rename.

    ``fsync``: the data and the rename are on disk when this returns, so that a power cut
    loses neither (content, image records, credentials). Without it the file is still never
    half-written when its writer dies, which is all state rewritten often needs. ``mode`` is
    the new file's (before the umask). A failure (a full disk) leaves no temp file behind.
    """
    path = os.fspath(path)
    directory, name = os.path.split(path)
    # One temp name per process and thread: concurrent writers never share one, and a
    # writer killed half-way leaves at most one behind, which its next write replaces.
    tmp = os.path.join(directory, f".{name}.{os.getpid()}-{_thread.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with open(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if fsync:
        fsync_dir(directory or ".")


def write_json_atomic(path, data, *, fsync: bool, mode: int = 0o644, indent=None) -> None:
    """``data`` as JSON, as ``write_atomic`` writes."""
    import json  # not at import: the monitor loads json only once its container runs

    write_atomic(path, json.dumps(data, indent=indent).encode(), fsync=fsync, mode=mode)


# Locks held by this process and thread: (pid, thread, path) -> [exclusive, depth]. A flock
# belongs to an open file, so a second open of the same lock in one process would wait for
# the first forever; nesting is counted here instead. The pid is in the key so that a forked
# child does not take its parent's locks for its own.
_held: dict[tuple[int, int, str], list] = {}


class lock:
    """``with lock(path):`` holds an flock on ``path`` (created if missing, mode 0600),
    exclusive or shared. Nests within a thread (an exclusive lock covers a shared one, not
    the other way round). ``retake_if_replaced``: for a lock file that may be replaced or
    removed while we wait for it; the lock is then taken again, on the file now at ``path``.
    """

    def __init__(self, path, exclusive: bool = True, *, retake_if_replaced: bool = False):
        self.path = os.fspath(path)
        self.exclusive = exclusive
        self.retake = retake_if_replaced
        self.fd = -1

    def __enter__(self) -> lock:
        self.key = (os.getpid(), _thread.get_ident(), self.path)
        entry = _held.get(self.key)
        if entry is not None:
            if self.exclusive and not entry[0]:
                raise RuntimeError(f"{self.path} is held shared by this thread and cannot be taken exclusively")
            entry[1] += 1
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH)
                if not self.retake or os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        self.fd = fd
        _held[self.key] = [self.exclusive, 1]
        return self

    def __exit__(self, *exc) -> None:
        entry = _held[self.key]
        entry[1] -= 1
        if entry[1] == 0:
            del _held[self.key]
            os.close(self.fd)  # closing releases the flock
            self.fd = -1
