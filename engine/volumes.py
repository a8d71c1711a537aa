"""Volumes: named volumes (local directories), anonymous volumes, bind mounts.

Layout: ``root/volumes/<name>/_data`` (what containers see) and
``root/volumes/<name>/volume.json`` (name, labels, created, anonymous). The record is
written last, so a directory without it is a leftover of a killed create.

Which containers use a volume is read from the containers' own ``config.json``
(``Mounts``), so nothing has to be kept in step. Anonymous volumes (an image's
``VOLUME`` not covered by a ``-v``, or ``-v /path``) belong to their container and are
removed with it.

Mount specs, as ``docker run -v``: ``NAME:/dst[:ro]``, ``/host/path:/dst[:ro|rw]``,
``/dst`` (anonymous).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from engine.base.clock import now_rfc3339_seconds
from engine.base.files import write_json_atomic
from engine.base.inroot import tree_size
from engine.base.labels import labels_match
from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument, NotFound

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")
META = "volume.json"


@dataclass(frozen=True)
class MountSpec:
    kind: str  # "volume" | "bind" | "anonymous"
    source: str  # volume name, host path, or "" (anonymous)
    destination: str
    read_only: bool = False


def parse_mount(text: str) -> MountSpec:
    """One ``-v`` value. Pure: checks the syntax and, for binds, that the path exists."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("invalid volume specification: empty")
    parts = text.split(":")
    mode = ""
    if len(parts) == 3:
        source, dest, mode = parts
    elif len(parts) == 2:
        source, dest = parts
        if not dest.startswith("/"):  # "/dst:ro"
            source, dest, mode = "", source, dest
    elif len(parts) == 1:
        source, dest = "", parts[0]
    else:
        raise InvalidArgument(f"invalid volume specification: {text!r}")
    read_only = False
    for option in filter(None, mode.split(",")):
        if option in ("ro", "readonly"):
            read_only = True
        elif option == "rw":
            read_only = False
        elif option not in ("z", "Z", "rprivate", "private", "nocopy"):
            raise InvalidArgument(f"invalid volume specification {text!r}: unknown mode {option!r}")
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid volume specification {text!r}: the destination {dest!r} "
                              "is not an absolute path")
    dest = os.path.normpath(dest)
    if dest == "/":
        raise InvalidArgument(f"invalid volume specification {text!r}: cannot mount over /")
    if not source:
        return MountSpec("anonymous", "", dest, read_only)
    if source.startswith("/") or source.startswith("."):
        if not source.startswith("/"):
            raise InvalidArgument(f"invalid volume specification {text!r}: the host path must be absolute")
        if not os.path.exists(source):
            raise InvalidArgument(f"invalid mount {text!r}: bind source path does not exist: {source}")
        return MountSpec("bind", os.path.normpath(source), dest, read_only)
    check_name(source)
    return MountSpec("volume", source, dest, read_only)


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidArgument(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
                              "allowed (no slash)")


def parse_mounts(items) -> list[MountSpec]:
    specs = [item if isinstance(item, MountSpec) else parse_mount(item) for item in items or []]
    seen = set()
    for spec in specs:
        if spec.destination in seen:
            raise InvalidArgument(f"duplicate mount point: {spec.destination}")
        seen.add(spec.destination)
    return specs





class Volumes:
    def __init__(self, config: EngineConfig):
        self.config = config
        self.root = config.subdir("volumes")

    # ------------------------------------------------------------ store
    def _dir(self, name: str) -> Path:
        check_name(name)
        return self.root / name

    def exists(self, name: str) -> bool:
        return (self._dir(name) / META).is_file()

    def _meta(self, name: str) -> dict:
        try:
            return json.loads((self._dir(name) / META).read_text())
        except FileNotFoundError:
            raise NotFound(f"get {name}: no such volume") from None

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if NAME_RE.match(p.name) and (p / META).is_file())

    def create(self, name: str | None = None, labels: dict[str, str] | None = None, *,
               anonymous: bool = False) -> dict:
        """Make a volume; an existing one of that name is returned as is (as Docker does)."""
        if name is None:
            name = secrets.token_hex(32)
            anonymous = True
        directory = self._dir(name)
        if (directory / META).is_file():
            return self.inspect(name, size=False)
        if directory.exists():  # a killed create: no record, so no container uses it
            shutil.rmtree(directory, ignore_errors=True)
        try:
            directory.mkdir()
        except FileExistsError:  # someone else is creating it right now
            time.sleep(0.05)
            return self.inspect(name, size=False)
        try:
            (directory / "_data").mkdir()
            meta = {"Name": name, "Driver": "local", "CreatedAt": now_rfc3339_seconds(), "Labels": dict(labels or {}),
                    "Anonymous": anonymous, "Options": {}, "Scope": "local"}
            write_json_atomic(directory / META, meta, fsync=False)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        from engine import events

        events.emit(self.config, "volume", "create", name, {"driver": "local"})
        return self.inspect(name, size=False)

    def path(self, name: str) -> Path:
        self._meta(name)
        return self._dir(name) / "_data"

    def inspect(self, name: str, size: bool = True) -> dict:
        meta = self._meta(name)
        data = {
            "Name": meta["Name"], "Driver": "local", "Mountpoint": str(self._dir(name) / "_data"),
            "CreatedAt": meta["CreatedAt"], "Labels": meta.get("Labels") or {},
            "Scope": "local", "Options": meta.get("Options") or {},
            "Anonymous": bool(meta.get("Anonymous")),
        }
        users = self.users(name)
        data["UsageData"] = {"RefCount": len(users), "Size": tree_size(self._dir(name) / "_data", allocated=True) if size else -1}
        data["Containers"] = users
        return data

    def list(self, size: bool = False, filters: dict[str, list[str]] | None = None) -> list[dict]:
        out = []
        usage = self._usage()
        for name in self.names():
            try:
                meta = self._meta(name)
            except NotFound:
                continue
            users = usage.get(name, [])
            entry = {"Name": name, "Driver": "local", "Mountpoint": str(self.root / name / "_data"),
                     "CreatedAt": meta["CreatedAt"], "Labels": meta.get("Labels") or {},
                     "Anonymous": bool(meta.get("Anonymous")), "Containers": users,
                     "UsageData": {"RefCount": len(users),
                                   "Size": tree_size(self.root / name / "_data", allocated=True) if size else -1}}
            if filters and not _matches(entry, filters):
                continue
            out.append(entry)
        return out

    # ------------------------------------------------------------ users
    def _usage(self) -> dict[str, list[dict]]:
        """volume name -> [{"Id", "Name"}] of the containers that mount it."""
        usage: dict[str, list[dict]] = {}
        containers = self.config.root / "containers"
        if not containers.is_dir():
            return usage
        for cdir in containers.iterdir():
            try:
                config = json.loads((cdir / "config.json").read_text())
            except (OSError, ValueError):
                continue
            for mount in config.get("Mounts") or []:
                if mount.get("Type") == "volume":
                    usage.setdefault(mount["Name"], []).append(
                        {"Id": config["Id"], "Name": config["Name"].lstrip("/")})
        return usage

    def users(self, name: str) -> list[dict]:
        return self._usage().get(name, [])

    # ------------------------------------------------------------ remove
    def remove(self, name: str, force: bool = False) -> None:
        self._meta(name)
        users = self.users(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(u['Id'] for u in users)}]")
        self._delete(name)

    def _delete(self, name: str) -> None:
        directory = self._dir(name)
        trash = self.root / f".trash-{name[:64]}-{secrets.token_hex(4)}"
        try:
            os.replace(directory, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)
        from engine import events

        events.emit(self.config, "volume", "destroy", name, {"driver": "local"})

    def prune(self, filters: dict[str, list[str]] | None = None) -> tuple[list[str], int]:
        """Remove every volume no container uses; (names, bytes reclaimed)."""
        usage = self._usage()
        removed, reclaimed = [], 0
        for entry in self.list(filters=filters):
            name = entry["Name"]
            if usage.get(name):
                continue
            reclaimed += tree_size(self.root / name / "_data", allocated=True)
            self._delete(name)
            removed.append(name)
        for trash in self.root.glob(".trash-*"):
            shutil.rmtree(trash, ignore_errors=True)
        return removed, reclaimed

    # ------------------------------------------------------------ for containers
    def prepare_mounts(self, specs: list[MountSpec], image_volumes: dict | None,
                       rootfs: Path | None = None) -> tuple[list[dict], list[dict], list[str]]:
        """The OCI mounts and the Docker-shaped ``Mounts`` for a container being created,
        creating the named volumes it names (if missing) and its anonymous ones.

        Returns (oci mounts, Mounts, volumes created here); on error, what was created here
        is removed again. A new volume mounted over a directory of the image gets that
        directory's content, as Docker does.
        """
        wanted = list(specs)
        taken = {s.destination for s in wanted}
        for dest in sorted(image_volumes or {}):
            dest = os.path.normpath(dest)
            if dest.startswith("/") and dest != "/" and dest not in taken:
                wanted.append(MountSpec("anonymous", "", dest, False))
                taken.add(dest)
        created: list[str] = []
        oci, docker = [], []
        try:
            for spec in sorted(wanted, key=lambda s: s.destination.count("/")):
                if spec.kind == "bind":
                    source = spec.source
                    docker.append({"Type": "bind", "Source": source, "Destination": spec.destination,
                                   "Mode": "ro" if spec.read_only else "", "RW": not spec.read_only,
                                   "Propagation": "rprivate"})
                else:
                    name = spec.source
                    if spec.kind == "anonymous":
                        name = secrets.token_hex(32)
                    fresh = not self.exists(name)
                    if fresh:
                        self.create(name, anonymous=spec.kind == "anonymous")
                        created.append(name)
                    source = str(self._dir(name) / "_data")
                    if fresh and rootfs is not None:
                        _copy_up(rootfs, spec.destination, Path(source))
                    docker.append({"Type": "volume", "Name": name, "Source": source,
                                   "Destination": spec.destination, "Driver": "local",
                                   "Mode": "ro" if spec.read_only else "z", "RW": not spec.read_only,
                                   "Propagation": "", "Anonymous": spec.kind == "anonymous"})
                options = ["rbind", "rprivate"] + (["ro"] if spec.read_only else [])
                oci.append({"destination": spec.destination, "type": "bind", "source": source,
                            "options": options})
        except BaseException:
            for name in created:
                self._delete(name)
            raise
        return oci, docker, created

    def discard(self, names: list[str]) -> None:
        """Undo the volumes a failed create made."""
        for name in names or []:
            self._delete(name)

    def release(self, mounts: list[dict]) -> None:
        """A container is being removed: its anonymous volumes go with it."""
        for mount in mounts or []:
            if mount.get("Type") == "volume" and mount.get("Anonymous"):
                try:
                    if len(self.users(mount["Name"])) <= 1:
                        self._delete(mount["Name"])
                except (NotFound, InvalidArgument):
                    pass


def _copy_up(rootfs: Path, destination: str, target: Path) -> None:
    """Copy what the image has at ``destination`` into a new, empty volume."""
    source = rootfs / destination.lstrip("/")
    try:
        real = source.resolve()
        if not str(real).startswith(str(rootfs.resolve())) or not source.is_dir() or source.is_symlink():
            return
    except OSError:
        return
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    st = os.lstat(source)
    os.chown(target, st.st_uid, st.st_gid)
    os.chmod(target, st.st_mode & 0o7777)


def _matches(entry: dict, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "name":
            if not any(v in entry["Name"] for v in values):
                return False
        elif key == "dangling":
            want = values[0].lower() in ("1", "true")
            if want != (not entry["Containers"]):
                return False
        elif key == "label":
            if not labels_match(entry["Labels"], values):
                return False
        else:
            raise InvalidArgument(f"invalid filter {key!r}")
    return True
