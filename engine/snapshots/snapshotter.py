"""Container root filesystems: an overlayfs mount over unpacked layers, or a flat copy.

Each snapshot lives in ``root/snapshots/<key>/``:

* ``snapshot.json``: the driver used and the layer directories it sits on (lowest
  first), so that ``mount(key)`` can mount it again after a reboot;
* overlay driver: ``upper/`` (the container's writes), ``work/`` and ``merged/`` (the
  mount point, the container's rootfs);
* copy driver: ``merged/``, a plain directory with the layers flattened into it (used
  where overlayfs does not work, e.g. Berth itself in a container), and ``base.json``,
  what the layers gave, to tell the container's changes from it.

The driver is chosen by probing (``engine.system.host.overlay_usable``) unless forced, and the
answer is kept in ``snapshots/.driver``. A snapshot keeps the driver it was made with.

``diff`` lists changes as ``docker diff`` does; ``write_diff`` writes them as a layer tar
(what ``commit`` adds on top of the image's layers).

Limits of the overlay driver: at most ``OVL_MAX_STACK`` (500) layers, and the mount
options must fit in one page (4 KiB). Layer directories are short
(``layers/<16 hex>``); if the absolute paths are still too long, the mount runs with
its working directory in the layers' common parent and relative lowerdirs, which fits
about 230 layers. Beyond that the prepare fails with a clear error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.base.inroot import tree_size
from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument, NotFound, RuntimeFailure
from engine.images.layers import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX, apply_layer, apply_tree
from engine.snapshots import mounts
from engine.system.host import overlay_usable

DRIVERS = ("overlay", "copy")
OVL_MAX_STACK = 500
MOUNT_DATA_LIMIT = 4095  # one page, with the trailing NUL
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_probed: dict[Path, str] = {}


@dataclass(frozen=True)
class Change:
    """One line of ``docker diff``: kind "A" (added), "C" (changed) or "D" (deleted)."""

    kind: str
    path: str


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [_unescape_mountinfo(line.split()[4]) for line in f if line.strip()]


def probe_driver(directory: Path) -> str:
    """"overlay" if overlayfs can be mounted in ``directory``, else "copy".

    The answer is recorded in ``directory/.driver``: probing mounts a test overlay
    (about 0.1 s), too slow to repeat in every ``python -m engine`` process. Delete the
    file to probe again.
    """
    directory = Path(directory)
    if directory in _probed:
        return _probed[directory]
    record = directory / ".driver"
    try:
        driver = record.read_text().strip()
    except FileNotFoundError:
        driver = ""
    if driver not in DRIVERS:
        ok, _ = overlay_usable(directory)
        driver = "overlay" if ok else "copy"
        tmp = directory / f".driver.{os.getpid()}"
        tmp.write_text(driver + "\n")
        os.rename(tmp, record)
    _probed[directory] = driver
    return driver


class Snapshotter:
    def __init__(self, config: EngineConfig, driver: str | None = None):
        self.dir = config.subdir("snapshots")
        # Container rootfs hold setuid binaries and device nodes: no host user may reach them.
        os.chmod(self.dir, 0o700)
        if driver is None:
            driver = probe_driver(self.dir)
        if driver not in DRIVERS:
            raise InvalidArgument(f"unknown storage driver {driver!r} (expected overlay or copy)")
        self.driver = driver

    # -- names and records

    def _snap(self, key: str) -> Path:
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            raise InvalidArgument(f"invalid snapshot key {key!r}")
        return self.dir / key

    def _meta(self, key: str) -> dict:
        snap = self._snap(key)
        try:
            return json.loads((snap / "snapshot.json").read_text())
        except FileNotFoundError:
            raise NotFound(f"snapshot {key} not found") from None

    def exists(self, key: str) -> bool:
        return (self._snap(key) / "snapshot.json").is_file()

    def path(self, key: str) -> Path:
        """The container's rootfs (mounted or not)."""
        return self._snap(key) / "merged"

    def list(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir() if KEY_RE.fullmatch(p.name)
                      and (p / "snapshot.json").is_file())

    def lowers(self, key: str) -> list[Path]:
        return [Path(p) for p in self._meta(key)["lowers"]]

    def driver_of(self, key: str) -> str:
        return self._meta(key)["driver"]

    # -- lifecycle

    def prepare(self, key: str, lowers: list[Path],
                layer_tars: list[Callable[[], BinaryIO]] | None = None) -> Path:
        """Make the rootfs of ``key`` over ``lowers`` (layer dirs, lowest first) and mount it.

        ``layer_tars`` (openers of the layer blobs, lowest first) lets the copy driver
        apply the tars flat instead of copying unpacked layers; the overlay driver ignores
        it. On any error nothing is left: no mount, no directory.
        """
        snap = self._snap(key)
        lowers = [Path(p).absolute() for p in lowers]
        for lower in lowers:
            if not lower.is_dir():
                raise NotFound(f"layer directory {lower} is missing")
        if self.driver == "overlay" and len(lowers) > OVL_MAX_STACK:
            raise InvalidArgument(f"{len(lowers)} layers: overlayfs stacks at most {OVL_MAX_STACK}")
        if snap.exists() and not (snap / "snapshot.json").exists():
            self._destroy(snap)  # left by a prepare that was killed half-way
        try:
            snap.mkdir()
        except FileExistsError:
            raise Conflict(f"snapshot {key} already exists") from None
        try:
            merged = snap / "merged"
            parts = [merged]
            if self.driver == "overlay":
                parts += [snap / "upper", snap / "work"]
                if not lowers:
                    parts.append(snap / "empty")  # overlayfs needs one lowerdir
            for part in parts:
                part.mkdir()
                os.chmod(part, 0o755)  # the rootfs's "/" whatever our umask
            if self.driver == "overlay":
                self._mount_overlay(snap, lowers)
            elif layer_tars is not None:
                for opener in layer_tars:
                    with opener() as blob:
                        apply_layer(blob, merged, "flat")
            else:
                for lower in lowers:
                    apply_tree(lower, merged)
            if self.driver == "copy":
                # What the image gave, to tell the container's changes from it later.
                (snap / "base.json").write_text(json.dumps(_scan(merged), separators=(",", ":")))
            # Written last: a snapshot without its record is a leftover, not a snapshot.
            tmp = snap / "snapshot.json.tmp"
            tmp.write_text(json.dumps({"driver": self.driver, "lowers": [str(p) for p in lowers]}))
            os.rename(tmp, snap / "snapshot.json")
        except BaseException:
            self._destroy(snap)
            raise
        return merged

    def mount(self, key: str) -> Path:
        """Mount ``key`` again (after a reboot or an unmount); a no-op if mounted."""
        meta = self._meta(key)
        snap = self._snap(key)
        if meta["driver"] == "overlay" and not self.is_mounted(key):
            lowers = [Path(p) for p in meta["lowers"]]
            for lower in lowers:
                if not lower.is_dir():
                    raise NotFound(f"layer directory {lower} of snapshot {key} is missing")
            self._mount_overlay(snap, lowers)
        return snap / "merged"

    def unmount(self, key: str) -> None:
        self._meta(key)  # NotFound for an unknown key
        self._unmount(self._snap(key) / "merged")

    def is_mounted(self, key: str) -> bool:
        return str(self._snap(key) / "merged") in mount_points()

    def remove(self, key: str) -> None:
        """Unmount and delete; removing what does not exist is fine."""
        snap = self._snap(key)
        if snap.exists():
            self._destroy(snap)

    def clean_leftovers(self) -> int:
        """Delete what killed prepares and removes left behind; how many were found.

        Only trash is touched: a snapshot directory without its record may be a prepare
        still running in another process, so ``prepare`` of that key deals with it.
        """
        found = 0
        for trash in self.dir.glob(".trash-*"):
            if str(trash / "snapshot" / "merged") in mount_points():
                continue  # never delete through a mount
            shutil.rmtree(trash, ignore_errors=True)
            found += 1
        return found

    # -- inspection

    def diff(self, key: str) -> Iterator[Change]:
        """What the container changed, as ``docker diff`` lists it, sorted by path.

        Overlay: read from ``upper/`` (0/0 character devices are deletions; an opaque
        directory is reported as changed, without listing the lower files it hides).
        Copy: ``merged/`` compared with the record of it taken at prepare time (type,
        mode, owner, size, mtime, link target; like Docker's naive diff, a content change
        that keeps size and mtime is not seen). A deleted directory is one "D", not one
        per file in it.
        """
        meta = self._meta(key)
        snap = self._snap(key)
        if meta["driver"] == "overlay":
            lowers = [Path(p) for p in meta["lowers"]]
            yield from sorted(_upper_changes(snap / "upper", lowers), key=lambda c: c.path)
            return
        yield from _compare(_load_base(snap), _scan(snap / "merged"))

    def write_diff(self, key: str, out: BinaryIO) -> tuple[str, int]:
        """Write the container's changes to ``out`` as an uncompressed layer tar.

        This is the layer ``commit`` adds: whiteouts as ``.wh.<name>``, a directory that
        hides everything below it as ``<dir>/.wh..wh..opq``, hardlinks kept, PAX xattrs
        (never ``trusted.overlay.*``). Returns the diff_id and the tar's size.
        """
        meta = self._meta(key)
        snap = self._snap(key)
        writer = _HashingWriter(out)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            links: dict[tuple[int, int], str] = {}
            if meta["driver"] == "overlay":
                _tar_upper(tar, snap / "upper", links)
            else:
                merged = snap / "merged"
                for change in self.diff(key):
                    rel = change.path.lstrip("/")
                    if change.kind == "D":
                        parent, _, name = rel.rpartition("/")
                        _tar_whiteout(tar, f"{parent}/{WHITEOUT_PREFIX}{name}" if parent
                                      else WHITEOUT_PREFIX + name)
                    else:
                        _tar_add(tar, merged, rel, links)
        return "sha256:" + writer.sha.hexdigest(), writer.size

    def usage(self, key: str) -> int:
        """Bytes of the files the container added or changed (its writable layer)."""
        meta = self._meta(key)
        snap = self._snap(key)
        if meta["driver"] == "overlay":
            return tree_size(snap / "upper")
        merged = snap / "merged"
        total, seen = 0, set()
        for change in self.diff(key):
            if change.kind == "D":
                continue
            st = os.lstat(merged / change.path.lstrip("/"))
            if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
        return total

    # -- internals

    def _mount_overlay(self, snap: Path, lowers: list[Path]) -> None:
        stack = list(reversed(lowers)) or [snap / "empty"]  # leftmost is the top layer
        tail = f",upperdir={snap / 'upper'},workdir={snap / 'work'}"
        options = "lowerdir=" + ":".join(str(p) for p in stack) + tail
        cwd = None
        if len(options) > MOUNT_DATA_LIMIT:
            # Relative lowerdirs, resolved by the kernel against the mount's cwd.
            parents = {p.parent for p in stack}
            if len(parents) == 1:
                cwd = parents.pop()
                options = "lowerdir=" + ":".join(p.name for p in stack) + tail
        if len(options) > MOUNT_DATA_LIMIT:
            raise InvalidArgument(f"{len(lowers)} layers do not fit in the overlay mount options "
                                  f"({len(options)} bytes, the limit is {MOUNT_DATA_LIMIT})")
        if any(c in str(p) for p in stack for c in ":,"):
            raise InvalidArgument("layer paths must not contain ':' or ','")
        if cwd is None:
            try:
                mounts.mount("overlay", snap / "merged", "overlay", options)
            except OSError as exc:
                raise RuntimeFailure(f"mounting the overlay for {snap.name} failed: {exc.strerror}") from None
            return
        # Relative lowerdirs resolve against the mounting process's cwd: a process of its own.
        out = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(snap / "merged")],
                             capture_output=True, text=True, cwd=cwd)
        if out.returncode != 0:
            raise RuntimeFailure(f"mounting the overlay for {snap.name} failed: "
                                 f"{out.stderr.strip() or out.stdout.strip()}")

    @staticmethod
    def _unmount(mountpoint: Path) -> None:
        # Overlays can be stacked by mistake: unmount until nothing is mounted there.
        for _ in range(8):
            if str(mountpoint) not in mount_points():
                return
            try:
                mounts.umount(mountpoint)
            except OSError as exc:
                # Busy (a process still has it open): detach it, as Docker does.
                try:
                    mounts.umount(mountpoint, detach=True)
                except OSError:
                    raise RuntimeFailure(f"unmounting {mountpoint} failed: {exc.strerror}") from None
        if str(mountpoint) in mount_points():
            raise RuntimeFailure(f"{mountpoint} is still mounted")

    def _destroy(self, snap: Path) -> None:
        self._unmount(snap / "merged")
        # Renamed away first, so a half-deleted snapshot is never seen under its key.
        trash = Path(tempfile.mkdtemp(prefix=f".trash-{snap.name}-", dir=self.dir))
        os.rename(snap, trash / "snapshot")
        shutil.rmtree(trash)


_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir_in(top: Path, parts: tuple[str, ...] | list[str]) -> int:
    """An fd on ``top/parts``, reached without following any symlink (OSError if not)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for comp in parts:
            next_fd = os.open(comp, _DIR_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _lstat_in(layer: Path, parts: tuple[str, ...]) -> os.stat_result | None:
    """lstat ``layer/parts`` without following any symlink on the way."""
    try:
        fd = _open_dir_in(layer, parts[:-1])
    except OSError:
        return None
    try:
        return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
    except OSError:
        return None
    finally:
        os.close(fd)


def _in_lowers(lowers: list[Path], parts: tuple[str, ...]) -> bool:
    for layer in reversed(lowers):  # top first: the first layer that has it decides
        st = _lstat_in(layer, parts)
        if st is not None:
            return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0)
    return False


def _upper_changes(upper: Path, lowers: list[Path]) -> Iterator[Change]:
    def walk(directory: Path, parts: tuple[str, ...]) -> Iterator[Change]:
        for name in sorted(os.listdir(directory)):
            path = directory / name
            rel = parts + (name,)
            st = path.lstat()
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                yield Change("D", "/" + "/".join(rel))
                continue
            yield Change("C" if _in_lowers(lowers, rel) else "A", "/" + "/".join(rel))
            if stat.S_ISDIR(st.st_mode):
                yield from walk(path, rel)

    yield from walk(upper, ())


def _scan(top: Path) -> dict[str, list]:
    """Path -> [mode, uid, gid, size, mtime_ns, link target] for everything under top."""
    out: dict[str, list] = {}
    for dirpath, dirnames, filenames in os.walk(top):  # does not follow symlinks
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            out["/" + os.path.relpath(path, top)] = [st.st_mode, st.st_uid, st.st_gid, size,
                                                     st.st_mtime_ns, link]
    return out


def _load_base(snap: Path) -> dict[str, list]:
    try:
        return json.loads((snap / "base.json").read_text())
    except FileNotFoundError:
        raise NotFound(f"snapshot {snap.name} has no record of its base to compare with") from None


def _compare(base: dict[str, list], now: dict[str, list]) -> Iterator[Change]:
    changes = []
    for path, info in now.items():
        if path not in base:
            changes.append(Change("A", path))
        elif base[path] != info:
            changes.append(Change("C", path))
    for path in base:
        if path in now:
            continue
        parent = os.path.dirname(path)
        if parent == "/" or parent in now and stat.S_ISDIR(now[parent][0]):
            changes.append(Change("D", path))  # the topmost deleted path only
    yield from sorted(changes, key=lambda c: c.path)


class _HashingWriter:
    def __init__(self, out: BinaryIO):
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)


def _tar_whiteout(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o600
    tar.addfile(info)


def _tar_add(tar: tarfile.TarFile, root: Path, rel: str, links: dict[tuple[int, int], str]) -> None:
    """Add ``root/rel`` as it is on disk.

    Everything is read through directory fds opened without following symlinks, so a
    container that swaps a directory for a symlink while we read cannot make us read the
    host's files; such a race is reported, not followed.
    """
    *parents, name = rel.split("/")
    try:
        parent = _open_dir_in(root, parents)
    except OSError as exc:
        raise RuntimeFailure(f"{rel}: the container changed its files while they were read "
                             f"(pause it first): {exc}") from exc
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        info = tarfile.TarInfo(rel)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = st.st_mtime
        fmt = stat.S_IFMT(st.st_mode)
        if fmt != stat.S_IFLNK:
            path = f"/proc/self/fd/{parent}/{name}"
            info.pax_headers = {
                f"SCHILY.xattr.{k}": os.getxattr(path, k, follow_symlinks=False).decode("utf-8", "surrogateescape")
                for k in os.listxattr(path, follow_symlinks=False) if not k.startswith("trusted.overlay.")
            }
        inode = (st.st_dev, st.st_ino)
        if fmt != stat.S_IFDIR and st.st_nlink > 1 and inode in links:
            info.type, info.linkname = tarfile.LNKTYPE, links[inode]
            tar.addfile(info)
            return
        if fmt != stat.S_IFDIR:
            links[inode] = rel
        if fmt == stat.S_IFREG:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
            with open(fd, "rb") as data:
                now = os.fstat(fd)
                if (now.st_dev, now.st_ino) != inode or now.st_size != st.st_size:
                    raise RuntimeFailure(f"{rel}: the container changed it while it was read (pause it first)")
                info.size = st.st_size
                tar.addfile(info, data)
            return
        if fmt == stat.S_IFDIR:
            info.type = tarfile.DIRTYPE
        elif fmt == stat.S_IFLNK:
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=parent)
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            info.type = tarfile.CHRTYPE if fmt == stat.S_IFCHR else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif fmt == stat.S_IFIFO:
            info.type = tarfile.FIFOTYPE
        else:
            return  # sockets are not layer content
        tar.addfile(info)
    finally:
        os.close(parent)


def _tar_upper(tar: tarfile.TarFile, upper: Path, links: dict[tuple[int, int], str]) -> None:
    """The overlay upper dir as a layer: 0/0 devices and opaque dirs become whiteout files."""
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, upper)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        if prefix:
            try:
                opaque = os.getxattr(dirpath, OPAQUE_XATTR) == b"y"
            except OSError:
                opaque = False
            if opaque:
                _tar_whiteout(tar, prefix + OPAQUE_MARKER)
        for name in sorted(dirnames + filenames):
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                _tar_whiteout(tar, prefix + WHITEOUT_PREFIX + name)
            else:
                _tar_add(tar, upper, prefix + name, links)


