"""Extracting tars that come from outside (build contexts, ``cp`` out of a container)
without letting them read or write anything outside the target directory.

One implementation on every Python (Python's own extraction filters, 3.11.4+, are not
used: Debian 12's 3.11.2 has none, and one set of rules is easier to trust). Every entry
is created relative to a directory descriptor of the target (``engine.base.inroot``), so:

* names are made relative to the target (``/etc/passwd`` is ``etc/passwd``); a name whose
  ``..`` climbs above it is refused;
* no entry is written through a symlink, whether the tar made it or it was there: a
  symlink among an entry's parents is refused;
* a hard link may only name a file this tar put in the target earlier (``/x`` means the
  target's ``x``), reached without symlinks; it is linked relative to the target;
* a regular file replaces what has its name (unlinked first, then created ``O_EXCL``), so
  writing a file never writes into another name's inode;
* owners are numeric (the host's user names mean nothing for a tar from elsewhere).

``trusted_links`` (``docker cp`` semantics) keeps symlinks to absolute or outside targets
and device files; without it they are refused and modes lose setuid, setgid and
group/other write bits, as Python's ``data`` filter does.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path

from engine.base.inroot import NO_SYMLINKS, Root, lexical_parts
from engine.errors import InvalidArgument, RuntimeFailure

_CHUNK = 1 << 20
# Errors that say "the machine is in trouble", not "the tar is bad".
_HOST_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM}


def extract_all(tar: tarfile.TarFile, directory: str | Path, members: Iterable[tarfile.TarInfo] | None = None,
                *, trusted_links: bool = False) -> None:
    """Extract into ``directory`` (which is made if missing). A refused entry raises
    ``InvalidArgument`` naming it; what came before it stays (the caller discards)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    dir_times: list[tuple[str, float]] = []
    extracted: set[str] = set()  # what a hard link may name
    with Root(directory, NO_SYMLINKS) as root:
        for member in members if members is not None else tar:
            try:
                _extract(tar, root, member, trusted_links, dir_times, extracted)
            except InvalidArgument:
                raise
            except OSError as exc:
                if exc.errno in _HOST_ERRNOS:
                    raise RuntimeFailure(f"extracting tar entry {member.name!r}: {exc}") from exc
                raise _refuse(member.name, exc.strerror or str(exc)) from exc
        for path, mtime in reversed(dir_times):  # last: creating children changed them
            try:
                fd = root.open_dir(path)
            except OSError:
                continue
            try:
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)


def _refuse(name: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"tar entry {name!r} refused: {why}")


def _clean(path: str, name: str) -> list[str]:
    """Lexically clean; a leading "/" is dropped, climbing above the root refused."""
    try:
        return lexical_parts(path)
    except ValueError:
        raise _refuse(name, "it would be written outside the target ('..')") from None


def _remove(dir_fd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based: never follows a symlink
    else:
        os.unlink(name, dir_fd=dir_fd)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _extract(tar: tarfile.TarFile, root: Root, member: tarfile.TarInfo, trusted: bool,
             dir_times: list[tuple[str, float]], extracted: set[str]) -> None:
    name = member.name
    parts = _clean(name, name)
    if not parts:
        return  # "." itself: the target exists already
    if not trusted:
        if member.issym():
            if member.linkname.startswith("/"):
                raise _refuse(name, "a symlink to an absolute path")
            _clean("/".join(parts[:-1] + [member.linkname]), name)  # climbing out is refused
        if member.ischr() or member.isblk() or member.isfifo():
            raise _refuse(name, "a special file")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()
            or member.ischr() or member.isblk() or member.isfifo()):
        raise _refuse(name, f"unsupported entry type {member.type!r}")
    mode = member.mode & (0o7777 if trusted else 0o755)
    try:
        parent = root.mkdirs("/".join(parts[:-1]))
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
            raise _refuse(name, "a parent is a symlink or not a directory") from None
        raise
    try:
        base = parts[-1]
        st = _lstat(parent, base)
        if member.isdir():
            if st is not None and not stat.S_ISDIR(st.st_mode):
                _remove(parent, base, st)
                st = None
            if st is None:
                os.mkdir(base, 0o700, dir_fd=parent)
            _attrs(parent, base, member, mode)
            dir_times.append(("/".join(parts), member.mtime))
            return
        if member.islnk():
            _hardlink(root, parent, base, parts, member, st, extracted)
            extracted.add("/".join(parts))
            return
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise _refuse(name, "it would replace a directory")
            os.unlink(base, dir_fd=parent)
        if member.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=parent)
            with open(fd, "wb") as out:
                source = tar.extractfile(member)
                if source is not None:
                    shutil.copyfileobj(source, out, _CHUNK)
        elif member.issym():
            os.symlink(member.linkname, base, dir_fd=parent)
        else:
            fmt = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            os.mknod(base, fmt | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
        _attrs(parent, base, member, mode)
        extracted.add("/".join(parts))
    finally:
        os.close(parent)


def _hardlink(root: Root, parent: int, base: str, parts: list[str], member: tarfile.TarInfo,
              st: os.stat_result | None, extracted: set[str]) -> None:
    name = member.name
    link = _clean(member.linkname, name)
    if not link:
        raise _refuse(name, "a hard link to the target itself")
    if link == parts:
        raise _refuse(name, "a hard link to itself")
    if "/".join(link) not in extracted:
        raise _refuse(name, f"its hard link target {member.linkname!r} is not an earlier entry of the tar")
    try:
        src_parent = root.open_dir("/".join(link[:-1]))
    except OSError:
        raise _refuse(name, f"its hard link target {member.linkname!r} is not an entry inside the target "
                            "(or is reached through a symlink)") from None
    try:
        src = _lstat(src_parent, link[-1])
        if src is None:
            raise _refuse(name, f"its hard link target {member.linkname!r} is not an entry inside the target")
        if stat.S_ISDIR(src.st_mode):
            raise _refuse(name, f"its hard link target {member.linkname!r} is a directory")
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise _refuse(name, "it would replace a directory")
            os.unlink(base, dir_fd=parent)
        os.link(link[-1], base, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)
    finally:
        os.close(src_parent)


def _attrs(parent: int, base: str, member: tarfile.TarInfo, mode: int) -> None:
    if os.geteuid() == 0:
        os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
    if not member.issym():
        os.chmod(base, mode, dir_fd=parent)  # made by us just now, not a symlink: no follow
        os.utime(base, (member.mtime, member.mtime), dir_fd=parent)
    else:
        os.utime(base, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
