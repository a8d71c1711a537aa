"""A full disk. The engine root holds a reserve: a file of RESERVE_SIZE bytes. A write that
must not fail for want of space (the exit code of a container; rmi and prune, which free
space but write their bookkeeping first) takes a slice of it when the disk is full, and it
is made whole again once there is room to spare."""

from __future__ import annotations

import errno
import os

from engine.base.files import write_atomic

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
RESERVE_NAME = "space.reserve"
RESERVE_SIZE = 1 << 20
RESERVE_SLICE = 64 << 10


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def free_bytes(path: str) -> int:
    """What an unprivileged writer may still use on the file system of ``path``."""
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def take_from_reserve(root: str) -> bool:
    """Give a slice of the reserve back to the file system; False when it is used up."""
    path = os.path.join(root, RESERVE_NAME)
    try:
        size = os.stat(path).st_size
        if size == 0:
            return False
        os.truncate(path, max(0, size - RESERVE_SLICE))  # truncating needs no room
        return True
    except OSError:
        return False


def ensure_reserve(root: str) -> None:
    """Make the reserve whole if the disk has room to spare (never fails)."""
    path = os.path.join(root, RESERVE_NAME)
    try:
        if os.stat(path).st_size >= RESERVE_SIZE:
            return
    except OSError:
        pass
    if free_bytes(root) < 4 * RESERVE_SIZE:
        return
    try:
        # written, not sparse: the blocks are really taken
        write_atomic(path, bytes(RESERVE_SIZE), fsync=False)
    except OSError:
        pass


def with_reserve(root: str, write):
    """``write()``; while the disk is full, again with a slice more of the reserve freed
    (``write`` must change nothing when it fails). The last failure is raised."""
    while True:
        try:
            return write()
        except OSError as exc:
            if not is_no_space(exc) or not take_from_reserve(root):
                raise
