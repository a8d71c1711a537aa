"""Build test images locally, without a registry or a network.

Everything is deterministic (fixed mtimes, gzip without a timestamp), so the same
call gives the same digests. Typical uses::

    from tests.support import imagebuilder as ib

    image = ib.busybox_image(store)                     # runnable: /bin/sh, /etc/passwd, user "app"
    image = ib.multilayer_image(store)                  # 4 layers: gzip, zstd, plain, whiteout + opaque dir
    built = ib.build_image([[ib.file("/hello", b"hi")]], cmd=["/hello"])
    built.write(store.content); built.register(store, "test/x:1")
    ib.docker_save_tar(path, [(built, ["test/x:1"])])   # legacy `docker save` layout

Layers are lists of ``Entry`` (see the helpers ``file``, ``directory``, ``symlink``,
``hardlink``, ``whiteout``, ``opaque``, ``char_device``, ``fifo``); parent
directories are not added automatically, so a test can build odd tars on purpose.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import platform
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from engine.images import store as im
from engine.images.reference import parse

BUSYBOX = Path("/bin/busybox")
MTIME = 1_700_000_000  # 2023-11-14, fixed so digests are stable
CREATED = "2023-11-14T22:13:20Z"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\nwheel:x:10:root,app\napp:x:1000:\nnogroup:x:65534:\n"


def host_architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- tar entries ---------------------------------------------------------------


@dataclass
class Entry:
    path: str
    kind: str = "file"  # file, dir, symlink, hardlink, char, block, fifo
    data: bytes = b""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    target: str = ""  # symlink or hardlink target
    mtime: int = MTIME
    xattrs: dict[str, str] = field(default_factory=dict)
    devmajor: int = 0
    devminor: int = 0
    raw_name: str | None = None  # exact tar name, for hostile tars (e.g. "../x", "/abs")


def file(path: str, data: bytes | str = b"", mode: int = 0o644, uid: int = 0, gid: int = 0, **kw) -> Entry:
    return Entry(path, "file", data.encode() if isinstance(data, str) else data, mode, uid, gid, **kw)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0, **kw) -> Entry:
    return Entry(path, "dir", mode=mode, uid=uid, gid=gid, **kw)


def symlink(path: str, target: str, **kw) -> Entry:
    return Entry(path, "symlink", target=target, mode=0o777, **kw)


def hardlink(path: str, target: str, **kw) -> Entry:
    return Entry(path, "hardlink", target=target, **kw)


def char_device(path: str, major: int, minor: int, mode: int = 0o666) -> Entry:
    return Entry(path, "char", mode=mode, devmajor=major, devminor=minor)


def fifo(path: str, mode: int = 0o644) -> Entry:
    return Entry(path, "fifo", mode=mode)


def whiteout(path: str) -> Entry:
    """Delete ``path`` from lower layers."""
    parent, name = os.path.split(path.rstrip("/"))
    return Entry(os.path.join(parent, ".wh." + name), "file", mode=0o644)


def opaque(dirpath: str) -> Entry:
    """Hide every lower-layer child of ``dirpath``."""
    return Entry(os.path.join(dirpath.rstrip("/"), ".wh..wh..opq"), "file", mode=0o644)


_KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def _tar_name(path: str) -> str:
    return path.lstrip("/") or "."


def layer_tar(entries: list[Entry]) -> bytes:
    """An uncompressed layer tar (PAX, as Docker writes them) of ``entries`` in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.raw_name if e.raw_name is not None else _tar_name(e.path))
            info.type = _KINDS[e.kind]
            info.mode = e.mode if e.mode is not None else (0o755 if e.kind == "dir" else 0o644)
            info.uid, info.gid, info.mtime = e.uid, e.gid, e.mtime
            info.uname = info.gname = ""
            if e.kind in ("symlink", "hardlink"):
                info.linkname = _tar_name(e.target) if e.kind == "hardlink" else e.target
            if e.kind in ("char", "block"):
                info.devmajor, info.devminor = e.devmajor, e.devminor
            if e.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs.items()}
            if e.kind == "file":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def compress(data: bytes, compression: str | None) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression is None:
        return data
    raise ValueError(f"unknown compression {compression!r}")


# --- layers, configs, manifests -------------------------------------------------


@dataclass
class Layer:
    blob: bytes
    diff_id: str
    media_type: str
    created_by: str = ""

    @property
    def digest(self) -> str:
        return sha256(self.blob)

    @property
    def size(self) -> int:
        return len(self.blob)

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def layer_media_type(compression: str | None, oci: bool) -> str:
    if oci:
        return {None: im.OCI_LAYER, "gzip": im.OCI_LAYER_GZIP, "zstd": im.OCI_LAYER_ZSTD}[compression]
    if compression == "zstd":
        raise ValueError("Docker schema 2 has no zstd layer type; use oci=True")
    return {None: im.DOCKER_LAYER, "gzip": im.DOCKER_LAYER_GZIP}[compression]


def make_layer(entries: list[Entry] | bytes, compression: str | None = "gzip", oci: bool = True,
               created_by: str = "") -> Layer:
    tar = entries if isinstance(entries, bytes) else layer_tar(entries)
    return Layer(compress(tar, compression), sha256(tar), layer_media_type(compression, oci), created_by)


def make_config(layers: list[Layer], *, cmd=None, entrypoint=None, env=None, workdir=None, user=None,
                labels=None, exposed_ports=None, volumes=None, stop_signal=None, created: str = CREATED,
                architecture: str | None = None, os_name: str = "linux", history: list[dict] | None = None,
                extra_config: dict | None = None) -> bytes:
    conf: dict = {"Env": env if env is not None else [f"PATH={DEFAULT_PATH}"]}
    for key, value in (("Cmd", cmd), ("Entrypoint", entrypoint), ("WorkingDir", workdir), ("User", user),
                       ("Labels", labels), ("StopSignal", stop_signal)):
        if value is not None:
            conf[key] = value
    if exposed_ports:
        conf["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in exposed_ports}
    if volumes:
        conf["Volumes"] = {v: {} for v in volumes}
    conf.update(extra_config or {})
    if history is None:
        history = [{"created": created, "created_by": layer.created_by or f"layer {i}"}
                   for i, layer in enumerate(layers)]
    config = {
        "architecture": architecture or host_architecture(),
        "os": os_name,
        "created": created,
        "config": conf,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": history,
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def make_manifest(config: bytes, layers: list[Layer], oci: bool = True, annotations: dict | None = None) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": im.OCI_MANIFEST if oci else im.DOCKER_MANIFEST,
        "config": {"mediaType": im.OCI_CONFIG if oci else im.DOCKER_CONFIG, "digest": sha256(config),
                   "size": len(config)},
        "layers": [layer.descriptor() for layer in layers],
    }
    if annotations:
        manifest["annotations"] = annotations
    return json.dumps(manifest, indent=2).encode()


def make_index(manifests: list[tuple[bytes, str, str]], oci: bool = True) -> bytes:
    """An index of (manifest bytes, os, architecture) entries."""
    index = {
        "schemaVersion": 2,
        "mediaType": im.OCI_INDEX if oci else im.DOCKER_LIST,
        "manifests": [
            {"mediaType": json.loads(m)["mediaType"], "digest": sha256(m), "size": len(m),
             "platform": {"os": os_name, "architecture": arch}}
            for m, os_name, arch in manifests
        ],
    }
    return json.dumps(index, indent=2).encode()


@dataclass
class BuiltImage:
    manifest: bytes
    config: bytes
    layers: list[Layer]

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256(self.config)

    @property
    def id(self) -> str:
        return self.config_digest

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    @property
    def media_type(self) -> str:
        return json.loads(self.manifest)["mediaType"]

    @property
    def blobs(self) -> dict[str, bytes]:
        out = {layer.digest: layer.blob for layer in self.layers}
        out[self.config_digest] = self.config
        out[self.manifest_digest] = self.manifest
        return out

    def layer_tars(self) -> list[bytes]:
        """The uncompressed layer tars (what `docker save` legacy format stores)."""
        out = []
        for layer in self.layers:
            comp = im.layer_compression(layer.media_type)
            if comp == "gzip":
                out.append(gzip.decompress(layer.blob))
            elif comp == "zstd":
                out.append(zstandard.ZstdDecompressor().decompressobj().decompress(layer.blob))
            else:
                out.append(layer.blob)
        return out

    def write(self, content) -> None:
        """Put every blob into a ContentStore."""
        for digest, data in self.blobs.items():
            content.put(data, digest)

    def register(self, store, ref: str | None = None):
        """Write the blobs and register the image in an ImageStore under ``ref``.

        Holds a content lease throughout, as a pull does, so a concurrent prune cannot
        remove a blob between its write and the registration."""
        with store.content.lease():
            self.write(store.content)
            return store.register(self.manifest_digest, parse(ref) if ref else None)


def build_image(layers: list[list[Entry] | Layer], compression: str | None = "gzip", oci: bool = True,
                annotations: dict | None = None, **config) -> BuiltImage:
    """An image from layers given as entry lists (compressed with ``compression``) or ready Layers.

    Keyword arguments go to ``make_config`` (cmd, entrypoint, env, workdir, user, labels...).
    """
    built = [
        layer if isinstance(layer, Layer) else make_layer(layer, compression, oci, created_by=f"layer {i}")
        for i, layer in enumerate(layers)
    ]
    config_bytes = make_config(built, **config)
    return BuiltImage(make_manifest(config_bytes, built, oci, annotations), config_bytes, built)


# --- busybox -----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _busybox_bytes() -> bytes:
    return BUSYBOX.read_bytes()


@functools.lru_cache(maxsize=1)
def busybox_applets() -> tuple[str, ...]:
    """Paths of the applets ("bin/sh", "usr/bin/awk"...) as busybox itself lists them."""
    import subprocess

    out = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True).stdout
    return tuple(line.strip() for line in out.splitlines() if line.strip())


def busybox_rootfs_entries() -> list[Entry]:
    """A small runnable root: busybox with its applet links, /etc files, and the usual dirs."""
    entries = [directory(d) for d in ("/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/etc",
                                      "/dev", "/proc", "/sys", "/var", "/root", "/home", "/run")]
    entries[entries.index(next(e for e in entries if e.path == "/root"))].mode = 0o700
    entries += [directory("/tmp", 0o1777), directory("/home/app", 0o755, 1000, 1000)]
    entries.append(file("/bin/busybox", _busybox_bytes(), 0o755))
    for applet in busybox_applets():
        if applet != "bin/busybox":
            entries.append(symlink("/" + applet, "/bin/busybox"))
    entries += [
        file("/etc/passwd", PASSWD),
        file("/etc/group", GROUP),
        file("/etc/hostname", "busybox\n"),
        file("/etc/os-release", 'NAME="Berth test busybox"\nID=berth-test\n'),
    ]
    return entries


@functools.lru_cache(maxsize=8)
def busybox_layer(compression: str | None = "gzip", oci: bool = True) -> Layer:
    return make_layer(busybox_rootfs_entries(), compression, oci, created_by="ADD busybox rootfs")


def busybox_built(compression: str | None = "gzip", oci: bool = True, **config) -> BuiltImage:
    config.setdefault("cmd", ["sh"])
    return build_image([busybox_layer(compression, oci)], oci=oci, **config)


def busybox_image(store, ref: str | None = "test/busybox:latest", compression: str | None = "gzip",
                  oci: bool = True, **config):
    """Register a runnable one-layer busybox image (Cmd ["sh"]) in ``store``; returns the Image."""
    return busybox_built(compression, oci, **config).register(store, ref)


def multilayer_built(oci: bool = True) -> BuiltImage:
    """busybox + three layers exercising plain/zstd tars, a whiteout and an opaque directory.

    Result seen from a container:
      /data/keep.txt "keep", /data/changed.txt "new", no /data/gone.txt,
      /opt/app contains only new.txt (old.txt and sub/ hidden by the opaque marker),
      /data/link -> keep.txt, /data/hard is a hardlink of /data/keep.txt,
      /home/app/owned.txt owned by 1000:1000 mode 0600.
    """
    layer1 = [
        directory("/data"),
        file("/data/keep.txt", "keep"),
        file("/data/gone.txt", "to be deleted"),
        file("/data/changed.txt", "old"),
        directory("/opt"),
        directory("/opt/app"),
        file("/opt/app/old.txt", "old"),
        directory("/opt/app/sub"),
        file("/opt/app/sub/deep.txt", "deep"),
    ]
    layer2 = [
        directory("/data"),
        file("/data/changed.txt", "new"),
        symlink("/data/link", "keep.txt"),
        hardlink("/data/hard", "/data/keep.txt"),
        file("/home/app/owned.txt", "mine", 0o600, 1000, 1000),
    ]
    layer3 = [
        directory("/data"),
        whiteout("/data/gone.txt"),
        directory("/opt/app"),
        file("/opt/app/new.txt", "new"),  # before the marker on purpose: it must survive
        opaque("/opt/app"),
    ]
    # layer2 repeats keep.txt so the hardlink target is inside the same tar, as Docker requires.
    layer2.insert(1, file("/data/keep.txt", "keep"))
    layers = [
        busybox_layer("gzip", oci),
        make_layer(layer1, "zstd" if oci else "gzip", oci, created_by="COPY data"),
        make_layer(layer2, None, oci, created_by="RUN change"),
        make_layer(layer3, "gzip", oci, created_by="RUN delete"),
    ]
    return build_image(layers, oci=oci, cmd=["sh"], workdir="/data", labels={"berth.test": "multilayer"})


def multilayer_image(store, ref: str | None = "test/layers:latest", oci: bool = True):
    return multilayer_built(oci).register(store, ref)


# --- docker save tars ---------------------------------------------------------------


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), MTIME, 0o644
    tar.addfile(info, io.BytesIO(data))


def docker_save_tar(path: Path, images: list[tuple[BuiltImage, list[str]]], legacy: bool = True) -> Path:
    """Write a tar as `docker save` does.

    ``legacy``: Docker <= 24 layout (``<id>/layer.tar``, ``<config hex>.json``,
    ``manifest.json``, ``repositories``), layers uncompressed. Otherwise Docker 25's:
    an OCI layout (``oci-layout``, ``index.json``, ``blobs/sha256``) plus ``manifest.json``,
    keeping the original manifest and blobs.
    """
    manifest_json, repositories = [], {}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        written: set[str] = set()
        index = []
        for built, tags in images:
            if legacy:
                layer_paths, parent = [], ""
                for tar_bytes, chain in zip(built.layer_tars(), im.chain_ids(built.diff_ids), strict=True):
                    layer_id = hashlib.sha256(f"{parent} {chain}".encode()).hexdigest()
                    if layer_id not in written:
                        _add(tar, f"{layer_id}/VERSION", b"1.0")
                        v1 = {"id": layer_id, **({"parent": parent} if parent else {}), "created": CREATED}
                        _add(tar, f"{layer_id}/json", json.dumps(v1).encode())
                        _add(tar, f"{layer_id}/layer.tar", tar_bytes)
                        written.add(layer_id)
                    layer_paths.append(f"{layer_id}/layer.tar")
                    parent = layer_id
                config_name = built.config_digest.removeprefix("sha256:") + ".json"
                if config_name not in written:
                    _add(tar, config_name, built.config)
                    written.add(config_name)
            else:
                for digest, data in built.blobs.items():
                    name = "blobs/sha256/" + digest.removeprefix("sha256:")
                    if name not in written:
                        _add(tar, name, data)
                        written.add(name)
                layer_paths = ["blobs/sha256/" + layer.digest.removeprefix("sha256:") for layer in built.layers]
                config_name = "blobs/sha256/" + built.config_digest.removeprefix("sha256:")
                parent = ""
                for tag in tags or [None]:
                    desc = {"mediaType": built.media_type, "digest": built.manifest_digest,
                            "size": len(built.manifest)}
                    if tag:
                        full = str(parse(tag))
                        desc["annotations"] = {im.CONTAINERD_NAME_ANNOTATION: full,
                                               im.REF_NAME_ANNOTATION: parse(tag).tag}
                    index.append(desc)
            manifest_json.append({"Config": config_name, "RepoTags": [parse(t).familiar for t in tags] or None,
                                  "Layers": layer_paths})
            for tag in tags:
                ref = parse(tag)
                top = parent or ""
                repositories.setdefault(ref.familiar_name, {})[ref.tag] = top
        _add(tar, "manifest.json", json.dumps(manifest_json).encode())
        if legacy:
            _add(tar, "repositories", json.dumps(repositories).encode())
        else:
            _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            _add(tar, "index.json", json.dumps({"schemaVersion": 2, "mediaType": im.OCI_INDEX,
                                                "manifests": index}).encode())
    return path
