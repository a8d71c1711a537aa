"""Paths inside a root: a container rootfs, a build stage or context, a volume, an
extraction target. Every path is resolved *inside* the root, and files are opened and
created relative to the root's directory descriptor; no host path string is ever built
from the names in an image, a context or a tar.

Three ways of treating symlinks met on the way (``Root(..., policy=...)``):

* ``IN_ROOT`` (the default): as the container would see them. The root stands for ``/``:
  an absolute symlink starts again at the root, ``..`` stops at the root. This is the
  meaning of ``openat2(2)``'s ``RESOLVE_IN_ROOT``, of moby's ``FollowSymlinkInScope``
  and of cyphar/filepath-securejoin. COPY into ``/app`` where the image has
  ``/app -> /srv/app`` lands in the rootfs's ``/srv/app``.
* ``BENEATH``: symlinks are followed only while they stay below the root; an absolute
  symlink or a ``..`` above the root is an error (``EXDEV``), as ``RESOLVE_BENEATH``.
  A build context uses it: what leaves the context is refused, not re-rooted.
* ``NO_SYMLINKS``: any symlink on the way is an error (``ELOOP``). Extraction uses it:
  a tar may not write through a symlink, its own or one that was there.

How. On Linux 5.6+ a path is opened with one ``openat2(2)`` call (through ctypes, the
syscall number per architecture) with the matching ``RESOLVE_*`` flags plus
``RESOLVE_NO_MAGICLINKS``, and the kernel guarantees the result. On older kernels, or
where ``openat2`` is missing or filtered (``ENOSYS``, ``EPERM`` from a seccomp profile,
an architecture whose number we do not know), the same semantics are implemented in
userspace: the path is walked one component at a time, each opened ``O_PATH |
O_NOFOLLOW`` relative to the descriptor of the directory before it; a symlink is read
through its own descriptor and its target is pushed back onto the components to walk;
``..`` pops the stack of descriptors we hold (it is never handed to the kernel, so a
directory moved out of the root meanwhile cannot take us with it). At most 40 symlinks
are followed (``ELOOP``). The fallback is as safe against escapes as ``openat2``; what it
cannot give is atomicity: a concurrent rename inside the root may make it resolve a
mix of the old and the new tree, always inside the root.

The last component is opened with ``O_NOFOLLOW`` relative to its parent's descriptor,
so a symlink swapped in after the walk fails with ``ELOOP`` rather than being followed.
Errors are ``OSError`` (``FileNotFoundError``, ``NotADirectoryError``, ``ELOOP``,
``EXDEV``) whose ``filename`` is the path as given; callers turn them into engine errors.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from collections.abc import Iterator
from pathlib import Path

IN_ROOT, BENEATH, NO_SYMLINKS = "in-root", "beneath", "no-symlinks"
POLICIES = (IN_ROOT, BENEATH, NO_SYMLINKS)
MAX_HOPS = 40  # symlinks followed in one resolution, as Linux

_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH, _RESOLVE_IN_ROOT = 0x02, 0x04, 0x08, 0x10
_RESOLVE = {IN_ROOT: _RESOLVE_IN_ROOT, BENEATH: _RESOLVE_BENEATH,
            NO_SYMLINKS: _RESOLVE_IN_ROOT | _RESOLVE_NO_SYMLINKS}
# openat2 came late enough (5.6) to have one number on the architectures of the unified
# syscall table; the others (alpha, ia64, mips) use the fallback.
_OPENAT2_NR = {"x86_64": 437, "aarch64": 437, "armv7l": 437, "armv6l": 437, "i686": 437, "i386": 437,
               "riscv64": 437, "ppc64le": 437, "ppc64": 437, "s390x": 437, "loongarch64": 437}.get(
    platform.machine())
PATH_FLAGS = os.O_PATH | os.O_CLOEXEC
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_use_openat2 = _OPENAT2_NR is not None


def openat2_available() -> bool:
    """Whether resolutions go through the kernel's openat2 (False: the userspace walk)."""
    return _use_openat2


def use_openat2(enabled: bool) -> bool:
    """Turn the openat2 fast path on or off (tests compare both); returns the old value."""
    global _use_openat2
    old, _use_openat2 = _use_openat2, bool(enabled) and _OPENAT2_NR is not None
    return old


def _openat2(dir_fd: int, path: str, flags: int, mode: int, resolve: int) -> int | None:
    """An fd, or None when openat2 cannot be used here (then it never is again)."""
    global _use_openat2
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, resolve | _RESOLVE_NO_MAGICLINKS)
    if "\0" in path:
        raise OSError(errno.EINVAL, "a path may not hold a NUL byte", path)
    raw = os.fsencode(path or ".")
    for _ in range(16):  # EAGAIN: a rename raced a ".." (RESOLVE_IN_ROOT); try again
        fd = _libc.syscall(ctypes.c_long(_OPENAT2_NR), ctypes.c_int(dir_fd), ctypes.c_char_p(raw),
                           ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err == errno.EAGAIN:
            continue
        if err == errno.ENOSYS or err == errno.EPERM and not _openat2_works(dir_fd):
            _use_openat2 = False  # an old kernel, or a seccomp filter refusing the syscall
            return None
        raise OSError(err, os.strerror(err), path)
    return None


def _openat2_works(dir_fd: int) -> bool:
    how = _OpenHow(os.O_PATH | os.O_CLOEXEC, 0, 0)
    fd = _libc.syscall(ctypes.c_long(_OPENAT2_NR), ctypes.c_int(dir_fd), ctypes.c_char_p(b"."),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        return False
    os.close(fd)
    return True


def _split(path: str) -> list[str]:
    if "\0" in path:
        raise OSError(errno.EINVAL, "a path may not hold a NUL byte", path)
    return [p for p in path.split("/") if p not in ("", ".")]


def _names_a_directory(path: str) -> bool:
    """``a/``, ``a/.``: the kernel wants a directory there (and follows a symlink)."""
    return path.rsplit("/", 1)[-1] in ("", ".", "..")


class _Walk:
    """The userspace resolver: a stack of directory fds from the root down."""

    def __init__(self, root_fd: int, policy: str, given: str):
        self.policy, self.given = policy, given
        self.root_fd = root_fd
        self.stack: list[int] = []  # fds below the root (the root's fd is not ours)
        self.names: list[str] = []
        self.missing = 0  # in lexical mode: how many of the last names do not exist
        self.hops = 0

    @property
    def top(self) -> int:
        return self.stack[-1] if self.stack else self.root_fd

    def close(self) -> None:
        for fd in self.stack:
            os.close(fd)
        self.stack.clear()

    def _error(self, code: int) -> OSError:
        return OSError(code, os.strerror(code), self.given)

    def up(self) -> None:
        if self.missing:
            self.missing -= 1
            self.names.pop()
        elif self.stack:
            os.close(self.stack.pop())
            self.names.pop()
        elif self.policy == BENEATH:
            raise self._error(errno.EXDEV)

    def to_root(self) -> None:
        if self.policy == BENEATH:
            raise self._error(errno.EXDEV)
        self.close()
        self.names.clear()
        self.missing = 0

    def run(self, parts: list[str], *, leaf: bool, follow_last: bool, create: int | None = None,
            lexical: bool = False) -> str | None:
        """Walk ``parts``. With ``leaf``, the last component is left unopened (returned,
        None if the path ends at a directory); a symlink there is followed when
        ``follow_last``. ``create`` (a mode) makes missing directories; ``lexical`` lets
        missing components through (their names are kept, for ``Root.resolve``)."""
        parts = list(parts)
        while parts:
            comp = parts.pop(0)
            if comp == "..":
                self.up()
                continue
            last = leaf and not parts
            if self.missing:
                self.names.append(comp)
                self.missing += 1
                continue
            try:
                fd = os.open(comp, PATH_FLAGS | os.O_NOFOLLOW, dir_fd=self.top)
            except FileNotFoundError:
                if last:
                    return comp
                if create is not None:
                    try:
                        os.mkdir(comp, create, dir_fd=self.top)
                    except FileExistsError:
                        pass  # made meanwhile (or a symlink made meanwhile: refused below)
                    parts.insert(0, comp)
                    continue
                if lexical:
                    self.names.append(comp)
                    self.missing = 1
                    continue
                raise
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode) and (not last or follow_last):
                try:
                    target = os.readlink("", dir_fd=fd)  # what we opened, not what is there now
                finally:
                    os.close(fd)
                if self.policy == NO_SYMLINKS:
                    raise self._error(errno.ELOOP)
                self.hops += 1
                if self.hops > MAX_HOPS:
                    raise self._error(errno.ELOOP)
                if target.startswith("/"):
                    self.to_root()
                parts[:0] = _split(target)
                if not parts and last:
                    return None  # a symlink to the root itself
                continue
            if last:
                os.close(fd)
                return comp
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise self._error(errno.ENOTDIR)
            os.close(fd)
            # Reopened for reading: an O_PATH fd cannot list or be fchmod'ed.
            self.stack.append(os.open(comp, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=self.top))
            self.names.append(comp)
        return None


class Root:
    """A directory that paths are resolved inside. The path that opens it is the
    engine's own (trusted); every path given to its methods is not."""

    def __init__(self, path: str | Path | int, policy: str = IN_ROOT):
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}")
        self.policy = policy
        if isinstance(path, int):
            self.fd, self.path = os.dup(path), None
        else:
            self.fd, self.path = os.open(path, DIR_FLAGS), Path(path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def with_policy(self, policy: str) -> Root:
        """The same root (a new fd), resolving with another policy."""
        return Root(self.fd, policy)

    # -------------------------------------------------------------- resolving
    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """The canonical path of ``path`` inside the root ("/a/b"), symlinks followed as
        the policy says; components that do not exist are kept as written."""
        walk = _Walk(self.fd, self.policy, path)
        try:
            last = walk.run(_split(path), leaf=not _names_a_directory(path), follow_last=follow_last,
                            lexical=True)
            names = walk.names + ([last] if last else [])
        finally:
            walk.close()
        return "/" + "/".join(names)

    def open_dir(self, path: str, *, create: int | None = None) -> int:
        """An fd (O_RDONLY | O_DIRECTORY) of the directory ``path``; with ``create`` (a mode),
        missing directories are made (``mkdir -p``), each inside the root."""
        if create is None and _use_openat2:
            fd = _openat2(self.fd, path.lstrip("/"), DIR_FLAGS, 0, _RESOLVE[self.policy])
            if fd is not None:
                return fd
        walk = _Walk(self.fd, self.policy, path)
        try:
            walk.run(_split(path), leaf=False, follow_last=True, create=create)
            return os.dup(walk.top)
        finally:
            walk.close()

    def mkdirs(self, path: str, mode: int = 0o755) -> int:
        """``mkdir -p`` inside the root; the fd of the last directory."""
        return self.open_dir(path, create=mode)

    def parent(self, path: str, *, follow_last: bool = False) -> tuple[int, str | None]:
        """(fd of the directory holding the last component, that component's name); the
        name is None when ``path`` is a directory named by ``/``, ``..`` or a symlink to
        the root. With ``follow_last``, a symlink in the last place is followed."""
        parts = _split(path)
        if _names_a_directory(path):
            return self.open_dir(path), None
        if not follow_last:
            return self.open_dir("/".join(parts[:-1])), parts[-1]
        walk = _Walk(self.fd, self.policy, path)
        try:
            name = walk.run(parts, leaf=True, follow_last=follow_last)
            return os.dup(walk.top), name
        finally:
            walk.close()

    def open_fd(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o644, *,
                follow_last: bool = True) -> int:
        """``open(2)`` of ``path`` inside the root. A symlink in the last place is followed
        (inside the root) unless ``follow_last`` is False, when ``O_NOFOLLOW`` applies."""
        if flags & os.O_CREAT and flags & os.O_EXCL:
            follow_last = False  # as open(2): O_EXCL never follows a symlink in the last place
        if not follow_last:
            flags |= os.O_NOFOLLOW
        if _use_openat2:
            fd = _openat2(self.fd, path.lstrip("/"), flags, mode, _RESOLVE[self.policy])
            if fd is not None:
                return fd
        dir_fd, name = self.parent(path, follow_last=follow_last)
        try:
            if name is None:
                if flags & (os.O_WRONLY | os.O_RDWR):
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
                return os.open(".", flags | os.O_CLOEXEC, dir_fd=dir_fd)
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    def open(self, path: str, mode: str = "rb", *, perm: int = 0o644, follow_last: bool = True):
        """A file object for ``path`` ("rb", "wb", "ab", "r+b", text modes too)."""
        base = mode.replace("b", "").replace("t", "")
        flags = {"r": os.O_RDONLY, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND, "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 "r+": os.O_RDWR, "w+": os.O_RDWR | os.O_CREAT | os.O_TRUNC}[base]
        fd = self.open_fd(path, flags, perm, follow_last=follow_last)
        return os.fdopen(fd, mode)

    def open_regular(self, path: str):
        """A regular file for reading ("rb"); anything else (a FIFO that would block, a
        device) is refused with EINVAL."""
        fd = self.open_fd(path, os.O_RDONLY | os.O_NONBLOCK)
        return _regular(fd, path)

    def lstat(self, path: str) -> os.stat_result:
        """The stat of ``path``, a symlink in the last place not followed."""
        return self._stat(path, follow_last=False)

    def stat(self, path: str) -> os.stat_result:
        return self._stat(path, follow_last=True)

    def _stat(self, path: str, follow_last: bool) -> os.stat_result:
        fd = self.open_fd(path, os.O_PATH, follow_last=follow_last)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def exists(self, path: str, *, follow_last: bool = True) -> bool:
        try:
            self._stat(path, follow_last)
        except OSError:
            return False
        return True

    def is_dir(self, path: str) -> bool:
        try:
            return stat.S_ISDIR(self.stat(path).st_mode)
        except OSError:
            return False

    def listdir(self, path: str) -> list[str]:
        fd = self.open_dir(path)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)


# ------------------------------------------------------------------ walking a tree

def open_child_dir(dir_fd: int, name: str) -> int:
    """A subdirectory by name, never through a symlink (ELOOP / ENOTDIR otherwise)."""
    return os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)


def open_child_file(dir_fd: int, name: str):
    """A regular file by name for reading, never through a symlink, never a FIFO or a
    device swapped in meanwhile (O_NONBLOCK, then checked)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    return _regular(fd, name)


def _regular(fd: int, name: str):
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", name)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def walk(dir_fd: int, rel: str = "") -> Iterator[tuple[str, int, str, os.stat_result]]:
    """Everything below the directory ``dir_fd``, parents first, names sorted, never
    following a symlink: (relative path, fd of its directory, name, lstat). The fd is
    valid while the item is being looked at. What vanishes or changes type meanwhile is
    skipped."""
    for name in sorted(os.listdir(dir_fd)):
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        path = f"{rel}/{name}" if rel else name
        yield path, dir_fd, name, st
        if stat.S_ISDIR(st.st_mode):
            try:
                child = open_child_dir(dir_fd, name)
            except OSError:
                continue  # replaced by a symlink or removed meanwhile
            try:
                yield from walk(child, path)
            finally:
                os.close(child)


def tree_size(top, *, allocated: bool = False) -> int:
    """Bytes below ``top``, each inode once: apparent sizes, or with ``allocated`` the blocks
    taken (as ``du``). Walked through directory fds that never follow a symlink, so that a
    container swapping a directory for a symlink meanwhile cannot make us walk the host. A
    missing ``top`` is 0; a directory removed meanwhile counts what was seen."""
    total, seen = 0, set()
    try:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        for _, _, _, st in walk(fd):
            if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512 if allocated else st.st_size
    except OSError:
        pass
    finally:
        os.close(fd)
    return total


def lexical_parts(path: str) -> list[str]:
    """The components of ``path`` taken as relative to a root, cleaned without looking at
    the disk: a leading "/", empty and "." parts dropped, ".." taking back the one before.
    ValueError when it would climb above the root."""
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise ValueError(path)
            parts.pop()
        else:
            parts.append(comp)
    return parts
