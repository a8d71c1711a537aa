"""Resolve a Docker ``User`` string against a container's root filesystem.

``user``, ``uid``, ``user:group``, ``uid:gid`` and mixes are accepted, as Docker
does. Names are looked up in the image's own ``/etc/passwd`` and ``/etc/group``
(never the host's); supplementary groups come from ``/etc/group`` membership.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.base.inroot import Root
from engine.errors import InvalidArgument


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _read_db(rootfs: Path, name: str) -> list[list[str]]:
    """Rows of a colon-separated database inside the rootfs; symlinks resolve inside it,
    as the container's libc would see them, never on the host."""
    try:
        with Root(rootfs) as root, root.open_regular(f"/etc/{name}") as f:
            text = f.read(16 << 20).decode(errors="replace")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve(rootfs: Path, spec: str | None) -> ResolvedUser:
    spec = (spec or "").strip()
    if not spec:
        spec = "0"
    user_part, _, group_part = spec.partition(":")
    passwd = [r for r in _read_db(rootfs, "passwd") if len(r) >= 4]
    groups = [r for r in _read_db(rootfs, "group") if len(r) >= 3]

    entry = None
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((r for r in passwd if r[2] == user_part), None)
    else:
        entry = next((r for r in passwd if r[0] == user_part), None)
        if entry is None:
            raise InvalidArgument(f"unable to find user {user_part}: no matching entries in passwd file")
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    home = entry[5] if entry is not None and len(entry) > 5 and entry[5] else "/"

    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            group = next((g for g in groups if g[0] == group_part), None)
            if group is None:
                raise InvalidArgument(
                    f"unable to find group {group_part}: no matching entries in group file")
            gid = int(group[2])

    # Supplementary groups: those listing the user by name (only when no group was forced).
    additional: list[int] = []
    if entry is not None and not group_part:
        name = entry[0]
        for group in groups:
            members = group[3].split(",") if len(group) > 3 else []
            if name in members and group[2].isdigit():
                g = int(group[2])
                if g != gid and g not in additional:
                    additional.append(g)
    return ResolvedUser(uid=uid, gid=gid, additional_gids=additional, home=home)
