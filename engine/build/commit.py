"""Images from containers and files in and out of them: ``commit``, ``cp``, ``export``.

Also the helpers ``engine.build.builder`` shares: ``store_layer`` (a plain layer tar into the
content store, gzip-compressed, with its diff_id) and ``make_image`` (a parent image
plus an optional layer and a new container config, registered).

Paths inside a container are resolved inside its root (``engine.base.inroot``): a symlink in
the container pointing at ``/etc`` means the container's ``/etc``, never the host's, and
files are read and written relative to directory descriptors of that root.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import hashlib
import json
import os
import stat
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from engine.base.arch import host_arch
from engine.base.clock import now_rfc3339_seconds
from engine.base.inroot import Root, open_child_dir, open_child_file, walk
from engine.base.tarsafe import extract_all
from engine.errors import EngineError, InvalidArgument, NotFound, RuntimeFailure
from engine.images import store as im
from engine.images.reference import parse

_CHUNK = 1 << 20
# Mount points the engine bind-mounts over in every container: their empty placeholders
# in the container's layer are not the user's changes.
ENGINE_FILES = {"etc/hosts", "etc/resolv.conf", "etc/hostname"}


# ---------------------------------------------------------------- layers and images

def filter_layer(src: BinaryIO, dst: BinaryIO, skip: set[str] = ENGINE_FILES) -> None:
    """Copy a layer tar, leaving out the engine's placeholder files (empty regular files)."""
    with tarfile.open(fileobj=src, mode="r|") as tin, \
            tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT) as tout:
        for member in tin:
            name = member.name.lstrip("./").rstrip("/") if member.name not in (".", "./") else ""
            if name in skip and member.isfile() and member.size == 0:
                continue
            data = tin.extractfile(member) if member.isfile() else None
            tout.addfile(member, data)


def store_layer(content, spool: BinaryIO) -> tuple[dict, str]:
    """A plain layer tar (seekable) into the content store as gzip: (descriptor, diff_id)."""
    spool.seek(0)
    sha = hashlib.sha256()
    while chunk := spool.read(_CHUNK):
        sha.update(chunk)
    diff_id = "sha256:" + sha.hexdigest()
    spool.seek(0)
    with content.ingest() as writer:
        with gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=6, mtime=0) as gz:
            while chunk := spool.read(_CHUNK):
                gz.write(chunk)
        size = writer.bytes_written
        digest = writer.commit()
    return {"digest": digest, "size": size}, diff_id


def make_image(store, parent, container_config: dict, *, layer: tuple[dict, str] | None = None,
               created_by: str = "", comment: str | None = None, author: str | None = None,
               ref=None, empty_layer: bool | None = None):
    """Register parent (an Image or None for scratch) + ``layer`` (from ``store_layer``)
    with ``container_config`` as a new image; the manifest keeps the parent's format."""
    now = now_rfc3339_seconds()
    if parent is not None:
        config = copy.deepcopy(parent.config)
        manifest_layers = copy.deepcopy(parent.manifest.get("layers") or [])
        docker = parent.manifest.get("mediaType") == im.DOCKER_MANIFEST or \
            parent.manifest.get("config", {}).get("mediaType") == im.DOCKER_CONFIG
    else:
        config = {"architecture": host_arch(), "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
        manifest_layers, docker = [], False
    config["created"] = now
    config["config"] = container_config
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    config["rootfs"].setdefault("diff_ids", [])
    if author is not None:
        config["author"] = author
    entry: dict = {"created": now, "created_by": created_by}
    if comment:
        entry["comment"] = comment
    if author:
        entry["author"] = author
    if layer is not None:
        descriptor, diff_id = layer
        config["rootfs"]["diff_ids"].append(diff_id)
        manifest_layers.append({"mediaType": im.DOCKER_LAYER_GZIP if docker else im.OCI_LAYER_GZIP,
                                "digest": descriptor["digest"], "size": descriptor["size"]})
    if layer is None if empty_layer is None else empty_layer:
        entry["empty_layer"] = True
    config.setdefault("history", []).append(entry)
    content = store.content
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = content.put(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": im.DOCKER_MANIFEST if docker else im.OCI_MANIFEST,
        "config": {"mediaType": im.DOCKER_CONFIG if docker else im.OCI_CONFIG,
                   "digest": config_digest, "size": len(config_bytes)},
        "layers": manifest_layers,
    }
    manifest_digest = content.put(json.dumps(manifest, indent=2).encode())
    target = parse(ref) if isinstance(ref, str) else ref
    return store.register(manifest_digest, target, parent=parent.id if parent is not None else None)


# ---------------------------------------------------------------- commit

def commit(containers, ref: str, repository: str | None = None, *, message: str | None = None,
           author: str | None = None, changes=(), pause: bool = True):
    """``docker commit``: the container's changes as one layer (deletions as whiteouts) on
    top of its image, with its config (plus ``changes``, Dockerfile-style)."""
    from engine.images.archive import apply_changes

    container = containers.get(ref)
    target = parse(repository) if repository else None
    if target is not None and target.digest:
        raise InvalidArgument("a committed image cannot be named by digest")
    cfg = container.config["Config"]
    new_config = {
        "Env": [e for e in cfg.get("Env") or [] if not e.startswith("HOSTNAME=")],
        "Cmd": cfg.get("Cmd") or None, "Entrypoint": cfg.get("Entrypoint") or None,
        "WorkingDir": cfg.get("WorkingDir") or "", "User": cfg.get("User") or "",
        "Labels": dict(cfg.get("Labels") or {}), "ExposedPorts": dict(cfg.get("ExposedPorts") or {}),
        "Volumes": dict(cfg.get("Volumes") or {}), "StopSignal": cfg.get("StopSignal") or None,
    }
    new_config = apply_changes(new_config, list(changes or []))
    new_config = {k: v for k, v in new_config.items() if v not in (None, "", {}, [])}
    parent = containers.images.get(container.config["Image"])
    paused = False
    if pause and container.status == "running":
        containers.pause(container.id)
        paused = True
    store = containers.images
    try:
        with store.content.lease(), tempfile.TemporaryFile(dir=store.content.ingest_dir) as raw, \
                tempfile.TemporaryFile(dir=store.content.ingest_dir) as clean:
            if not containers.snapshots.is_mounted(container.id):
                containers.snapshots.mount(container.id)
            containers.snapshots.write_diff(container.id, raw)
            raw.seek(0)
            filter_layer(raw, clean)
            layer = store_layer(store.content, clean)
            image = make_image(store, parent, new_config, layer=layer,
                               created_by=" ".join([container.config["Path"], *container.config["Args"]]),
                               comment=message, author=author, ref=target)
    finally:
        if paused:
            with contextlib.suppress(EngineError):
                containers.unpause(container.id)
    from engine import events

    events.emit(containers.config, "container", "commit", container.id,
                {"name": container.name, "imageID": image.id})
    return image


# ---------------------------------------------------------------- paths in a container

def _rootfs(containers, ref: str) -> tuple[object, Path]:
    container = containers.get(ref)
    if not containers.snapshots.exists(container.id):
        raise NotFound(f"the filesystem of container {container.name} is gone")
    if not containers.snapshots.is_mounted(container.id):
        containers.snapshots.mount(container.id)
    return container, containers.snapshots.path(container.id)


def tarinfo_at(dir_fd: int, name: str, st: os.stat_result, arcname: str) -> tarfile.TarInfo | None:
    """A tar header for the entry ``name`` of the directory ``dir_fd`` (``st`` its lstat);
    None for what is not content (sockets). Owners are numeric."""
    info = tarfile.TarInfo(arcname)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime
    fmt = stat.S_IFMT(st.st_mode)
    if fmt == stat.S_IFREG:
        info.size = st.st_size
    elif fmt == stat.S_IFDIR:
        info.type = tarfile.DIRTYPE
    elif fmt == stat.S_IFLNK:
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
    elif fmt in _DEVICE_TYPES:
        info.type = _DEVICE_TYPES[fmt]
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:
        return None
    return info


_DEVICE_TYPES = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE, stat.S_IFIFO: tarfile.FIFOTYPE}


def add_at(tar: tarfile.TarFile, info: tarfile.TarInfo, dir_fd: int, name: str, st: os.stat_result,
           links: dict[tuple[int, int], str]) -> None:
    """Write ``info``; a regular file's data is read through ``dir_fd`` (never through a
    symlink), a file already in this tar under another name becomes a hard link to it."""
    if info.isreg() and st.st_nlink > 1:
        first = links.setdefault((st.st_dev, st.st_ino), info.name)
        if first != info.name:
            info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
            tar.addfile(info)
            return
    if info.isreg():
        with open_child_file(dir_fd, name) as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)


def _add_tree(tar: tarfile.TarFile, dir_fd: int, name: str | None, arcname: str,
              links: dict[tuple[int, int], str]) -> None:
    """The entry ``name`` of ``dir_fd`` (None: ``dir_fd`` itself) and, for a directory,
    everything below it, never following a symlink."""
    if name is None:
        st, top = os.fstat(dir_fd), os.dup(dir_fd)
        info = tarinfo_at(dir_fd, ".", st, arcname)
    else:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        info = tarinfo_at(dir_fd, name, st, arcname)
        top = open_child_dir(dir_fd, name) if stat.S_ISDIR(st.st_mode) else None
    try:
        if info is not None:
            add_at(tar, info, dir_fd, name or ".", st, links)
        if top is not None:
            for rel, parent, child, child_st in walk(top):
                child_info = tarinfo_at(parent, child, child_st, f"{arcname}/{rel}" if arcname != "." else rel)
                if child_info is not None:
                    add_at(tar, child_info, parent, child, child_st, links)
    finally:
        if top is not None:
            os.close(top)


@contextlib.contextmanager
def _changing(path: str):
    """A file that vanished, changed size or type while read (a running container) is an
    engine error, not a crash."""
    try:
        yield
    except OSError as exc:
        raise RuntimeFailure(f"{path} could not be read whole (did the container change it meanwhile? "
                             f"pause it first): {exc}") from exc


def _in_container(root: Root, path: str, ref: str, follow_last: bool = True) -> tuple[int, str | None]:
    """(fd of the directory holding ``path`` inside the container, last name): NotFound if
    a component is missing. Symlinks resolve inside the container's root."""
    if not path:
        raise InvalidArgument("no path given")
    try:
        dir_fd, name = root.parent(path, follow_last=follow_last)
    except OSError as exc:
        raise NotFound(f"Could not find the file {path} in container {ref}: {exc.strerror}") from None
    if name is not None and not _exists_at(dir_fd, name):
        os.close(dir_fd)
        raise NotFound(f"Could not find the file {path} in container {ref}")
    return dir_fd, name


def _exists_at(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return True


def copy_from(containers, ref: str, path: str, out: BinaryIO) -> dict:
    """``docker cp CONTAINER:PATH -``: a tar of ``path`` (named by its last component)
    written to ``out``; returns its stat (name, size, mode). ``path`` and its symlinks
    resolve inside the container (a trailing ``/.`` copies a symlink itself)."""
    _, rootfs = _rootfs(containers, ref)
    with Root(rootfs) as root:
        dir_fd, leaf = _in_container(root, path, ref, follow_last=not path.endswith("/."))
        try:
            st = os.fstat(dir_fd) if leaf is None else os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
            name = PurePosixPath(path.rstrip("/")).name or "."
            with _changing(path), tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _add_tree(tar, dir_fd, leaf, name, {})
        finally:
            os.close(dir_fd)
    return {"name": name, "size": st.st_size, "mode": st.st_mode}


def copy_to(containers, ref: str, path: str, tar_stream: BinaryIO) -> None:
    """``docker cp - CONTAINER:PATH``: unpack a tar into the directory ``path`` (which must
    exist), safely: the directory is resolved inside the container's root and the tar is
    applied relative to its fd (no entry may land outside it)."""
    from engine.images.layers import apply_layer

    _, rootfs = _rootfs(containers, ref)
    with Root(rootfs) as root:
        try:
            fd = root.open_dir(path)
        except OSError:
            raise NotFound(f"no such directory in the container: {path}") from None
        try:
            apply_layer(tar_stream, fd, "flat")
        finally:
            os.close(fd)


def copy_in(containers, ref: str, host_path: str, path: str) -> None:
    """``docker cp HOST_PATH CONTAINER:PATH`` with Docker's rules: into ``path`` if it is a
    directory, else as ``path``."""
    src = Path(host_path)
    if not src.exists() and not src.is_symlink():
        raise NotFound(f"no such file or directory: {host_path}")
    _, rootfs = _rootfs(containers, ref)
    with Root(rootfs) as root:
        if root.is_dir(path):
            directory, name = path, src.name
        else:
            parent = str(PurePosixPath("/" + path.rstrip("/")).parent)
            if not root.is_dir(parent):
                raise NotFound(f"no such directory in the container: {parent}")
            directory, name = parent, PurePosixPath(path.rstrip("/")).name
    with tempfile.TemporaryFile() as spool:
        host_dir = os.open(src.absolute().parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_tree(tar, host_dir, src.name or None, name, {})
        finally:
            os.close(host_dir)
        spool.seek(0)
        copy_to(containers, ref, directory, spool)


def copy_out(containers, ref: str, path: str, host_path: str) -> None:
    """``docker cp CONTAINER:PATH HOST_PATH``: into ``host_path`` if it is a directory,
    else as ``host_path``. The tar is extracted relative to that directory's fd: nothing
    the container holds can write elsewhere on the host."""
    dest = Path(host_path)
    with tempfile.TemporaryFile() as spool:
        info = copy_from(containers, ref, path, spool)
        spool.seek(0)
        if dest.is_dir():
            directory, rename = dest, None
        else:
            if not dest.parent.is_dir():
                raise NotFound(f"no such directory: {dest.parent}")
            directory, rename = dest.parent, dest.name
        with tarfile.open(fileobj=spool, mode="r:") as tar:
            members = tar.getmembers()
            if rename is not None:
                for m in members:
                    for attr in ("name", "linkname") if m.islnk() else ("name",):
                        head, sep, tail = getattr(m, attr).partition("/")
                        if head == info["name"]:
                            setattr(m, attr, rename + sep + tail)
            extract_all(tar, directory, members, trusted_links=True)


def export(containers, ref: str, out: BinaryIO) -> None:
    """``docker export``: the container's whole filesystem as a tar, read through directory
    fds from its root (a symlink is exported as a symlink, never followed)."""
    _, rootfs = _rootfs(containers, ref)
    links: dict[tuple[int, int], str] = {}
    with Root(rootfs) as root, _changing("/"), \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel, dir_fd, name, st in walk(root.fd):
            info = tarinfo_at(dir_fd, name, st, rel)
            if info is not None:
                add_at(tar, info, dir_fd, name, st, links)
