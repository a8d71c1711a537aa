"""Extracting tars that come from outside (uploads, containers) without letting them
write outside the target.

Python 3.11.4 added extraction filters (``filter="data"`` / ``"tar"``); Debian 12 ships
3.11.2, which has none. ``extract_all`` uses the filters where they exist, and checks
each member itself where they don't, the way those filters do.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from engine.errors import InvalidArgument

HAS_FILTERS = hasattr(tarfile, "data_filter")


def extract_all(tar: tarfile.TarFile, directory: str | Path, members: Iterable[tarfile.TarInfo] | None = None,
                *, trusted_links: bool = False) -> None:
    """Extract into ``directory``. ``trusted_links`` keeps symlinks to absolute or outside
    targets and device files (``docker cp`` semantics); without it they are refused."""
    if HAS_FILTERS:
        tar.extractall(directory, members=members, filter="tar" if trusted_links else "data")
        return
    root = os.path.realpath(directory)
    for member in members if members is not None else tar:
        _check(member, root, trusted_links)
        tar.extract(member, root, set_attrs=True)


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check(member: tarfile.TarInfo, root: str, trusted_links: bool) -> None:
    name = member.name.lstrip("/")
    member.name = name
    # realpath follows what earlier members made: a symlink then a file through it is caught.
    target = os.path.realpath(os.path.join(root, name))
    if not _inside(root, target):
        raise InvalidArgument(f"tar entry {member.name!r} would be written outside the target")
    if member.islnk():
        linked = os.path.realpath(os.path.join(root, member.linkname.lstrip("/")))
        if not _inside(root, linked):
            raise InvalidArgument(f"tar entry {member.name!r} links outside the target")
    if not trusted_links:
        if member.issym():
            if os.path.isabs(member.linkname):
                raise InvalidArgument(f"tar entry {member.name!r} is a symlink to an absolute path")
            linked = os.path.realpath(os.path.join(os.path.dirname(target), member.linkname))
            if not _inside(root, linked):
                raise InvalidArgument(f"tar entry {member.name!r} is a symlink pointing outside the target")
        if member.ischr() or member.isblk() or member.isfifo():
            raise InvalidArgument(f"tar entry {member.name!r} is a special file")
        member.mode &= 0o755  # no setuid, setgid or world-writable bits, as the data filter does
