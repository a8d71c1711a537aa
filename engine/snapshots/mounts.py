"""mount(2) and umount2(2) through libc: the `mount` command costs a process (~5 ms) a call,
and every container start and removal mounts or unmounts its root filesystem."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MNT_DETACH = 2


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def mount(source: str, target: str | Path, fstype: str, options: str = "", flags: int = 0) -> None:
    _check(_libc.mount(source.encode(), str(target).encode(), fstype.encode(), flags,
                       options.encode() if options else None), f"mount {target}")


def umount(target: str | Path, detach: bool = False) -> None:
    _check(_libc.umount2(str(target).encode(), MNT_DETACH if detach else 0), f"umount {target}")
