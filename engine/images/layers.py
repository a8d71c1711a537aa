"""Applying image layer tars onto directories, safely.

A layer is applied in one of two modes:

* ``"overlay"``: into an empty directory of its own, which later becomes one lowerdir of
  an overlayfs mount. Whiteouts become what overlayfs understands: ``.wh.X`` a 0/0
  character device ``X``, ``.wh..wh..opq`` the xattr ``trusted.overlay.opaque=y`` on its
  directory.
  Where the filesystem refuses those markers (on an overlayfs, e.g. Berth in a
  container), the tar's own whiteout files are kept instead; such layers can only be
  flattened, which is all that works on that filesystem anyway.
* ``"flat"``: onto a root that already holds the layers below (the copy driver). Whiteouts
  delete what they name and no whiteout file is ever left in the result.

Both modes give the same visible tree: applying L1..Ln flat equals the overlay mount of
the L1..Ln directories.

Safety. A layer is untrusted input. Every path is walked component by component with
directory file descriptors opened ``O_NOFOLLOW``, so no symlink is ever followed, whether
it comes from this layer or from the layers below. The rules:

* absolute names are made relative to the root, as Docker does (``/etc/passwd`` is
  ``etc/passwd``);
* a name whose ``..`` components climb above the root is refused;
* a name whose parent is a symlink or a non-directory put there by the same layer is
  refused (the "``a -> /etc``, then ``a/passwd``" trick); so is a directory component
  named ``.wh.*``;
* in flat mode, a parent that is a symlink or a file from a *lower* layer is replaced by a
  directory: that is what the overlay mount of the same layers shows (an upper directory
  hides a lower non-directory);
* a hardlink must name an existing non-directory inside the root (in overlay mode, inside
  the same layer), reached without symlinks;
* ``trusted.overlay.*`` xattrs in a layer are dropped: a layer must not forge overlayfs
  metadata. (A 0/0 character device in a tar is still read by overlayfs as a whiteout,
  as with Docker's overlay2; flat mode makes it a real device.)

A refused layer raises ``InvalidArgument`` naming the entry. In overlay mode the layer is
extracted into a temporary directory next to the target and renamed into place only on
success, so a refused layer leaves nothing. In flat mode the root is left half-applied:
the caller (the copy snapshotter) discards the root it was building.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

from engine.base.files import lock, write_json_atomic
from engine.base.inroot import lexical_parts
from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument, RuntimeFailure
from engine.images.store import chain_ids

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MODES = ("flat", "overlay")
# Errors that say "the machine is in trouble", not "the layer is bad".
_HOST_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM}


@dataclass(frozen=True)
class LayerResult:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar stream
    size: int  # bytes of regular file content in the layer (Docker's layer size)
    tar_size: int = 0  # bytes of the uncompressed tar stream


# ---------------------------------------------------------------------------
# Streams: sniff compression, hash the uncompressed bytes.


class _Prefixed(io.RawIOBase):
    """A stream that yields ``head`` and then the rest of ``rest`` (after sniffing)."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def sniff_compression(head: bytes) -> str | None:
    """"gzip", "zstd" or None (plain), by magic bytes as containerd does."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def open_decompressed(fileobj: BinaryIO) -> tuple[BinaryIO, str | None]:
    """(a reader of the uncompressed bytes, "gzip" | "zstd" | None): sniffed, never read whole."""
    head = b""
    while len(head) < 4:
        more = fileobj.read(4 - len(head))
        if not more:
            break
        head += more
    stream = io.BufferedReader(_Prefixed(head, fileobj), CHUNK)
    kind = sniff_compression(head)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb"), kind
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True), kind
    return stream, None


def decompressed(fileobj: BinaryIO) -> BinaryIO:
    """The uncompressed bytes of a layer blob: gzip and zstd are sniffed by magic bytes."""
    return open_decompressed(fileobj)[0]


def open_layer(fileobj: BinaryIO) -> tarfile.TarFile:
    """A streaming tar reader over a plain, gzip or zstd layer; never reads it whole."""
    return tarfile.open(fileobj=decompressed(fileobj), mode="r|")


class _Hashing:
    """Counts and hashes every byte tarfile reads (the diff_id is over the plain tar)."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        # tarfile stops at the end-of-archive blocks; padding after them is in the digest too.
        while self.read(CHUNK):
            pass


# ---------------------------------------------------------------------------
# Entries: what a tar member (or a file of an unpacked layer) asks to put where.


@dataclass
class _Entry:
    name: str  # as written in the layer, for error messages
    parts: tuple[str, ...]  # cleaned path components below the root
    kind: str  # file dir symlink hardlink char block fifo whiteout opaque
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    linkname: str = ""
    link_parts: tuple[str, ...] = ()
    rdev: int = 0
    size: int = 0
    copy_data: Callable[[BinaryIO], None] | None = None


def _refuse(name: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"layer entry {name!r} refused: {why}")


def _clean(path: str, name: str) -> tuple[str, ...]:
    """Lexically clean a layer path; leading "/" is dropped, climbing above the root refused."""
    try:
        return tuple(lexical_parts(path))
    except ValueError:
        raise _refuse(name, "'..' escapes the root") from None


_TAR_KINDS = {
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


def _tar_entry(member: tarfile.TarInfo, tar: tarfile.TarFile) -> _Entry | None:
    name = member.name
    parts = _clean(name, name)
    if any(comp.startswith(WHITEOUT_PREFIX) for comp in parts[:-1]):
        raise _refuse(name, "a directory named like a whiteout")
    base = parts[-1] if parts else ""
    common = dict(name=name, uid=member.uid, gid=member.gid)
    if base == OPAQUE_MARKER:
        return _Entry(parts=parts[:-1], kind="opaque", **common)
    if base.startswith(WHITEOUT_META_PREFIX):
        return None  # aufs bookkeeping (.wh..wh.plnk...), skipped as Docker does
    if base.startswith(WHITEOUT_PREFIX):
        target = base[len(WHITEOUT_PREFIX):]
        if target in ("", ".", ".."):
            raise _refuse(name, "whiteout of nothing, '.' or '..'")
        return _Entry(parts=parts[:-1] + (target,), kind="whiteout", **common)

    if member.isreg():
        kind = "file"
    elif member.type in _TAR_KINDS:
        kind = _TAR_KINDS[member.type]
    else:
        raise _refuse(name, f"unsupported tar entry type {member.type!r}")
    xattrs = {
        key[len("SCHILY.xattr."):]: value.encode("utf-8", "surrogateescape")
        for key, value in member.pax_headers.items()
        if key.startswith("SCHILY.xattr.")
    }
    entry = _Entry(
        parts=parts, kind=kind, mode=member.mode & 0o7777, xattrs=xattrs,
        mtime_ns=int(round(member.mtime * 1_000_000_000)), linkname=member.linkname,
        rdev=os.makedev(member.devmajor, member.devminor) if kind in ("char", "block") else 0,
        size=member.size if kind == "file" else 0, **common,
    )
    if kind == "hardlink":
        entry.link_parts = _clean(member.linkname, name)
        if not entry.link_parts:
            raise _refuse(name, "hardlink to the root")
    if kind == "file":
        def copy_data(out: BinaryIO, member=member) -> None:
            src = tar.extractfile(member)
            assert src is not None
            shutil.copyfileobj(src, out, CHUNK)
        entry.copy_data = copy_data
    return entry


# ---------------------------------------------------------------------------
# The applier: puts entries under a root, never following a symlink.


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(dir_fd: int, name: str) -> None:
    st = _lstat(dir_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based: never follows symlinks
    else:
        os.unlink(name, dir_fd=dir_fd)


def _proc_path(dir_fd: int, name: str) -> str:
    # For xattrs on entries we cannot open (symlinks, devices): the parent is a safe fd.
    return f"/proc/self/fd/{dir_fd}/{name}"


def _set_xattr(target, key: str, value: bytes, follow: bool = True) -> None:
    try:
        os.setxattr(target, key, value, follow_symlinks=follow)
    except OSError as exc:
        # Skipped: xattrs this filesystem lacks, and user.* on a symlink or device
        # (the kernel forbids those).
        unsupported = exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)
        user_on_special = exc.errno == errno.EPERM and key.startswith("user.")
        if not (unsupported or user_on_special):
            raise


# Overlay markers. Where the filesystem refuses them (an overlayfs, where 0/0 devices
# cannot be made: Berth inside a container), the layer keeps the tar's own whiteout
# files instead. Such a layer can only be flattened (the copy driver, apply_tree), which
# is all that works there anyway, since overlayfs cannot be mounted on that filesystem.
_MARKER_REFUSED = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL)


def _mark_whiteout(parent: int, base: str, uid: int, gid: int) -> None:
    try:
        os.mknod(base, stat.S_IFCHR, 0, dir_fd=parent)
        os.chown(base, uid, gid, dir_fd=parent, follow_symlinks=False)
        return
    except OSError as exc:
        if exc.errno not in _MARKER_REFUSED:
            raise
    _remove(parent, WHITEOUT_PREFIX + base)
    fd = os.open(WHITEOUT_PREFIX + base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=parent)
    try:
        os.fchown(fd, uid, gid)
    finally:
        os.close(fd)


def _mark_opaque(dir_fd: int) -> None:
    try:
        os.setxattr(dir_fd, OPAQUE_XATTR, b"y")
    except OSError as exc:
        if exc.errno not in _MARKER_REFUSED:
            raise
        os.close(os.open(OPAQUE_MARKER, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd))


class _Applier:
    def __init__(self, root_fd: int, mode: str):
        self.root_fd = root_fd
        self.mode = mode
        # Everything this layer put in place, entries and the parents they went through.
        # In flat mode, whatever is not in here belongs to lower layers.
        self.layer_paths: set[tuple[str, ...]] = set()
        self.whiteouts: set[tuple[str, ...]] = set()
        self.dir_times: list[tuple[tuple[str, ...], int]] = []
        self.size = 0
        # The last parent walked to, kept open: tar entries come directory by directory.
        # Dropped whenever a directory is removed, so it never names a deleted one.
        self._cached: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        self._drop_cache()

    def _drop_cache(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _remove(self, dir_fd: int, name: str) -> None:
        st = _lstat(dir_fd, name)
        if st is not None and stat.S_ISDIR(st.st_mode):
            self._drop_cache()
        _remove(dir_fd, name)

    # -- walking

    def _walk(self, name: str, parts: tuple[str, ...], create: bool) -> int:
        """An fd on the directory ``parts``; with ``create``, missing parents are made."""
        if create and self._cached is not None and self._cached[0] == parts:
            return os.dup(self._cached[1])
        fd = os.dup(self.root_fd)
        try:
            for i, comp in enumerate(parts):
                prefix = parts[: i + 1]
                try:
                    next_fd = os.open(comp, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise _refuse(name, f"{'/'.join(prefix)} does not exist") from None
                    next_fd = self._mkdir(fd, comp)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    if not create or self.mode == "overlay" or prefix in self.layer_paths:
                        raise _refuse(name, f"{'/'.join(prefix)} is a symlink or not a directory") from None
                    # A lower layer's symlink or file: the overlay view shows our directory.
                    self._remove(fd, comp)
                    next_fd = self._mkdir(fd, comp)
                if create:
                    self.layer_paths.add(prefix)
                os.close(fd)
                fd = next_fd
            if create:
                self._drop_cache()
                self._cached = (parts, os.dup(fd))
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _open_existing(self, parts: tuple[str, ...]) -> int | None:
        try:
            return self._walk("", parts, create=False)
        except (InvalidArgument, OSError):
            return None

    @staticmethod
    def _mkdir(dir_fd: int, name: str) -> int:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        os.fchmod(fd, 0o755)  # an implicit parent, as Docker makes them
        return fd

    # -- entries

    def apply(self, e: _Entry) -> None:
        if e.kind == "opaque":
            fd = self._walk(e.name, e.parts, create=True)
            try:
                self._make_opaque(fd, e.parts)
            finally:
                os.close(fd)
            return
        if not e.parts:
            if e.kind != "dir":
                raise _refuse(e.name, "only a directory may stand for the root")
            self._dir_attrs(self.root_fd, e)
            return
        parent = self._walk(e.name, e.parts[:-1], create=True)
        try:
            if e.kind == "whiteout":
                self._whiteout(parent, e)
            else:
                self._put(parent, e.parts[-1], e)
                self.layer_paths.add(e.parts)
        finally:
            os.close(parent)

    def _make_opaque(self, dir_fd: int, parts: tuple[str, ...]) -> None:
        if self.mode == "overlay":
            _mark_opaque(dir_fd)
            return
        # Flat: remove what lower layers have below, keep what this layer put there.
        for name in os.listdir(dir_fd):
            child = parts + (name,)
            if child not in self.layer_paths:
                self._remove(dir_fd, name)
                continue
            st = _lstat(dir_fd, name)
            if st is not None and stat.S_ISDIR(st.st_mode):
                fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
                try:
                    self._make_opaque(fd, child)
                finally:
                    os.close(fd)

    def _whiteout(self, parent: int, e: _Entry) -> None:
        base = e.parts[-1]
        st = _lstat(parent, base)
        self.whiteouts.add(e.parts)
        if e.parts in self.layer_paths:
            # Whiteouts only hide lower layers: this layer's own entry stays, but a
            # directory of this layer must no longer show lower children.
            if st is not None and stat.S_ISDIR(st.st_mode):
                fd = os.open(base, DIR_FLAGS, dir_fd=parent)
                try:
                    self._make_opaque(fd, e.parts)
                finally:
                    os.close(fd)
            return
        self._remove(parent, base)
        if self.mode == "overlay":
            _mark_whiteout(parent, base, e.uid, e.gid)

    def _dir_attrs(self, fd: int, e: _Entry) -> None:
        os.fchown(fd, e.uid, e.gid)
        os.fchmod(fd, e.mode)  # after chown, which clears setuid/setgid
        self._xattrs(fd, e)
        self.dir_times.append((e.parts, e.mtime_ns))

    def _xattrs(self, target, e: _Entry, follow: bool = True) -> None:
        for key, value in e.xattrs.items():
            if key.startswith("trusted.overlay."):
                continue  # a layer must not forge overlayfs metadata
            _set_xattr(target, key, value, follow)

    def _put(self, parent: int, base: str, e: _Entry) -> None:
        st = _lstat(parent, base)
        if e.kind == "dir":
            if st is not None and not stat.S_ISDIR(st.st_mode):
                self._remove(parent, base)
                st = None
            if st is None:
                os.mkdir(base, 0o700, dir_fd=parent)
            fd = os.open(base, DIR_FLAGS, dir_fd=parent)
            try:
                self._dir_attrs(fd, e)
                if self.mode == "overlay" and e.parts in self.whiteouts:
                    _mark_opaque(fd)  # replaced a whited-out lower dir
            finally:
                os.close(fd)
            return
        if e.kind == "hardlink":
            self._hardlink(parent, base, e, st)
            return
        if st is not None:
            self._remove(parent, base)
        if e.kind == "file":
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=parent)
            try:
                with open(fd, "wb", closefd=False) as out:
                    if e.copy_data is not None:
                        e.copy_data(out)
                os.fchown(fd, e.uid, e.gid)
                os.fchmod(fd, e.mode)
                self._xattrs(fd, e)
                os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
            finally:
                os.close(fd)
            self.size += e.size
            return
        if e.kind == "symlink":
            os.symlink(e.linkname, base, dir_fd=parent)
        else:
            fmt = {"char": stat.S_IFCHR, "block": stat.S_IFBLK, "fifo": stat.S_IFIFO}[e.kind]
            os.mknod(base, fmt | 0o600, e.rdev, dir_fd=parent)
        os.chown(base, e.uid, e.gid, dir_fd=parent, follow_symlinks=False)
        if e.kind != "symlink":
            os.chmod(base, e.mode, dir_fd=parent)  # just made by us: not a symlink
        self._xattrs(_proc_path(parent, base), e, follow=False)
        os.utime(base, ns=(e.mtime_ns, e.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def _hardlink(self, parent: int, base: str, e: _Entry, st: os.stat_result | None) -> None:
        if e.link_parts == e.parts:
            raise _refuse(e.name, "hardlink to itself")
        src_parent = self._walk(e.name, e.link_parts[:-1], create=False)
        try:
            src = e.link_parts[-1]
            src_st = _lstat(src_parent, src)
            if src_st is None:
                raise _refuse(e.name, f"hardlink target {e.linkname!r} does not exist")
            if stat.S_ISDIR(src_st.st_mode):
                raise _refuse(e.name, f"hardlink target {e.linkname!r} is a directory")
            if self.mode == "overlay" and stat.S_ISCHR(src_st.st_mode) and src_st.st_rdev == 0 \
                    and e.link_parts in self.whiteouts:
                raise _refuse(e.name, f"hardlink target {e.linkname!r} was whited out")
            if st is not None:
                self._remove(parent, base)
            os.link(src, base, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(src_parent)

    def finish(self) -> None:
        # Directory mtimes last: creating their children changed them.
        for parts, mtime_ns in self.dir_times:
            fd = self._open_existing(parts)
            if fd is None:
                continue  # replaced later in the same layer
            try:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)


def _apply_entries(applier: _Applier, entry: _Entry) -> None:
    try:
        applier.apply(entry)
    except InvalidArgument:
        raise
    except OSError as exc:
        if exc.errno in _HOST_ERRNOS:
            raise RuntimeFailure(f"applying layer entry {entry.name!r}: {exc}") from exc
        raise _refuse(entry.name, exc.strerror or str(exc)) from exc


# ---------------------------------------------------------------------------
# Public entry points.


def _apply_into(fileobj: BinaryIO, target: Path | int, mode: str) -> LayerResult:
    if isinstance(target, int):  # a directory fd the caller resolved inside its root
        root_fd = os.dup(target)
    else:
        root_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        applier = _Applier(root_fd, mode)
        try:
            hashing = _Hashing(decompressed(fileobj))
            with tarfile.open(fileobj=hashing, mode="r|") as tar:  # type: ignore[call-overload]
                while (member := tar.next()) is not None:
                    entry = _tar_entry(member, tar)
                    if entry is not None:
                        _apply_entries(applier, entry)
                    tar.members.clear()  # stream mode keeps every member otherwise
            hashing.drain()
        except (tarfile.TarError, EOFError, zlib.error, zstandard.ZstdError, gzip.BadGzipFile) as exc:
            raise InvalidArgument(f"layer is not a valid tar archive: {exc}") from exc
        finally:
            applier.close()
        applier.finish()
    finally:
        os.close(root_fd)
    return LayerResult("sha256:" + hashing.sha.hexdigest(), applier.size, hashing.size)


def _check_diff_id(result: LayerResult, expected: str | None) -> None:
    if expected is not None and result.diff_id != expected:
        raise InvalidArgument(f"layer content does not match its diff_id: expected {expected}, "
                              f"got {result.diff_id}")


def apply_layer(fileobj: BinaryIO, target: Path | int, mode: str = "flat",
                expected_diff_id: str | None = None) -> LayerResult:
    """Apply the layer blob read from ``fileobj`` (plain, gzip or zstd tar) under ``target``.

    flat: ``target`` is an existing root holding the lower layers (or, for ``cp`` into a
    container, the fd of a directory resolved inside its root); on error it is left
    half-applied and the caller discards it. overlay: ``target`` must not exist (or be an
    empty directory); the layer appears there complete or not at all. With
    ``expected_diff_id``, a mismatch is an InvalidArgument (and, in overlay mode, nothing
    is kept).
    """
    if mode not in MODES:
        raise InvalidArgument(f"unknown layer mode {mode!r} (expected flat or overlay)")
    if mode == "flat":
        result = _apply_into(fileobj, target, "flat")
        _check_diff_id(result, expected_diff_id)
        return result
    target = Path(target)
    if target.is_symlink() or target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        result = _apply_into(fileobj, tmp, "overlay")
        _check_diff_id(result, expected_diff_id)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _read_xattrs(dir_fd: int, name: str) -> dict[str, bytes]:
    path = _proc_path(dir_fd, name)
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    return {key: os.getxattr(path, key, follow_symlinks=False) for key in keys}


def _tree_entries(layer_dir: Path) -> Iterable[_Entry]:
    """An unpacked overlay-format layer directory, read back as entries (parents first)."""
    seen_inodes: dict[tuple[int, int], tuple[str, ...]] = {}

    def walk(dir_fd: int, parts: tuple[str, ...]) -> Iterable[_Entry]:
        for name in sorted(os.listdir(dir_fd)):
            path = parts + (name,)
            label = "/".join(path)
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            fmt = stat.S_IFMT(st.st_mode)
            if fmt == stat.S_IFCHR and st.st_rdev == 0:
                yield _Entry(name=label, parts=path, kind="whiteout", uid=st.st_uid, gid=st.st_gid)
                continue
            # The whiteout files kept where overlay markers were refused (see _mark_whiteout).
            if name == OPAQUE_MARKER:
                yield _Entry(name=label, parts=parts, kind="opaque")
                continue
            if name.startswith(WHITEOUT_PREFIX):
                yield _Entry(name=label, parts=parts + (name[len(WHITEOUT_PREFIX):],), kind="whiteout")
                continue
            xattrs = _read_xattrs(dir_fd, name)
            common = dict(name=label, parts=path, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                          gid=st.st_gid, mtime_ns=st.st_mtime_ns, xattrs=xattrs)
            if fmt == stat.S_IFDIR:
                yield _Entry(kind="dir", **common)
                if xattrs.get(OPAQUE_XATTR) == b"y":
                    yield _Entry(name=label, parts=path, kind="opaque")
                fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
                try:
                    yield from walk(fd, path)
                finally:
                    os.close(fd)
                continue
            inode = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and inode in seen_inodes:
                first = seen_inodes[inode]
                yield _Entry(kind="hardlink", linkname="/".join(first), link_parts=first, **common)
                continue
            seen_inodes[inode] = path
            if fmt == stat.S_IFREG:
                def copy_data(out: BinaryIO, dir_fd=dir_fd, name=name) -> None:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                    with open(fd, "rb") as src:
                        shutil.copyfileobj(src, out, CHUNK)
                yield _Entry(kind="file", size=st.st_size, copy_data=copy_data, **common)
            elif fmt == stat.S_IFLNK:
                yield _Entry(kind="symlink", linkname=os.readlink(name, dir_fd=dir_fd), **common)
            elif fmt in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
                kind = {stat.S_IFCHR: "char", stat.S_IFBLK: "block", stat.S_IFIFO: "fifo"}[fmt]
                yield _Entry(kind=kind, rdev=st.st_rdev, **common)
            # sockets are not layer content; skipped

    fd = os.open(layer_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield from walk(fd, ())
    finally:
        os.close(fd)


def apply_tree(layer_dir: Path, target: Path) -> None:
    """Apply an unpacked overlay-format layer (as LayerStore keeps them) onto a flat root.

    This is how the copy driver flattens a stack: 0/0 character devices delete, opaque
    directories hide what the lower layers have below them.
    """
    root_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        applier = _Applier(root_fd, "flat")
        try:
            for entry in _tree_entries(Path(layer_dir)):
                _apply_entries(applier, entry)
        finally:
            applier.close()
        applier.finish()
    finally:
        os.close(root_fd)


# ---------------------------------------------------------------------------
# The store of unpacked layers, shared between images, keyed by ChainID.


SHORT_KEY_LEN = 16  # hex chars; keeps overlay mount data (one page) small


def short_key(chain_id: str) -> str:
    algorithm, _, hexpart = chain_id.partition(":")
    if algorithm != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidArgument(f"not a sha256 chain id: {chain_id!r}")
    return hexpart[:SHORT_KEY_LEN]


class LayerStore:
    """Unpacked layers for overlayfs: ``root/layers/<short key>/`` per ChainID.

    Next to each layer directory, ``<short>.json`` records the full chain id and diff id
    and ``<short>.lock`` serialises unpacking between processes. A layer directory
    appears by an atomic rename, so it is either complete or absent.
    """

    def __init__(self, config: EngineConfig, content):
        self.content = content
        self.dir = config.subdir("layers")
        # Layers hold images' setuid binaries and device nodes: no host user may reach them.
        os.chmod(self.dir, 0o700)

    def path(self, chain_id: str) -> Path:
        return self.dir / short_key(chain_id)

    def has(self, chain_id: str) -> bool:
        return self.path(chain_id).is_dir()

    def ensure(self, image, progress: Callable[[str], None] | None = None) -> list[Path]:
        """Unpack the image's missing layers; their directories, lowest first."""
        diff_ids = [layer.diff_id for layer in image.layers]
        paths = []
        for layer, chain_id in zip(image.layers, chain_ids(diff_ids), strict=True):
            path = self.path(chain_id)
            if not path.is_dir():
                self._unpack(layer, chain_id, path)
                if progress is not None:
                    progress(chain_id)
            paths.append(path)
        return paths

    def _unpack(self, layer, chain_id: str, path: Path) -> None:
        with self._lock(path.name):
            if path.is_dir():
                return  # another process unpacked it meanwhile
            meta = path.with_name(path.name + ".json")
            if meta.exists():
                recorded = json.loads(meta.read_text()).get("chain_id")
                if recorded != chain_id:
                    raise Conflict(f"layer key {path.name} is taken by {recorded}")
            # An unpack of this layer killed half-way left its temp dir: we hold the lock,
            # so nobody is still writing it.
            for leftover in self.dir.glob(f".tmp-{path.name}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            # The record first: a crash after it leaves a record without a layer, harmless.
            meta.write_text(json.dumps({"chain_id": chain_id, "diff_id": layer.diff_id,
                                        "digest": layer.digest}))
            with self.content.open(layer.digest) as blob:
                result = apply_layer(blob, path, "overlay", expected_diff_id=layer.diff_id)
            write_json_atomic(meta, {"chain_id": chain_id, "diff_id": layer.diff_id,
                                     "digest": layer.digest, "size": result.size}, fsync=False)

    def size(self, chain_id: str) -> int:
        """Bytes of file content in the unpacked layer (0 if unknown)."""
        try:
            return int(json.loads(self.path(chain_id).with_suffix(".json").read_text()).get("size", 0))
        except (OSError, ValueError):
            return 0

    def _lock(self, short: str):
        return lock(self.dir / f"{short}.lock", retake_if_replaced=True)

    def chain_ids(self) -> list[str]:
        """Chain ids of the layers present."""
        out = []
        for meta in sorted(self.dir.glob("*.json")):
            if meta.with_suffix("").is_dir():
                try:
                    out.append(json.loads(meta.read_text())["chain_id"])
                except (OSError, ValueError, KeyError):
                    continue
        return out

    def remove_unused(self, in_use_chain_ids: Iterable[str]) -> dict[str, int]:
        """Delete unpacked layers not in ``in_use_chain_ids``: {chain id removed: bytes}.

        The caller passes every chain id an image or a container still needs; a layer
        being unpacked or mounted meanwhile is the caller's to protect (image lock).
        """
        keep = {short_key(c) for c in in_use_chain_ids}
        removed: dict[str, int] = {}
        for chain_id in self.chain_ids():
            short = short_key(chain_id)
            if short in keep:
                continue
            with self._lock(short):
                path = self.dir / short
                if not path.is_dir():
                    continue
                removed[chain_id] = self.size(chain_id)
                trash = Path(tempfile.mkdtemp(prefix=f".trash-{short}-", dir=self.dir))
                os.rename(path, trash / "layer")  # gone at once for readers
                shutil.rmtree(trash)
                (self.dir / f"{short}.json").unlink(missing_ok=True)
        # Trash of a removal killed half-way (another remover may be finishing it too).
        for trash in self.dir.glob(".trash-*"):
            shutil.rmtree(trash, ignore_errors=True)
        return removed
