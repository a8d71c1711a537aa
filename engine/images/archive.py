"""Image tars: ``docker save`` / ``docker load`` and ``docker import``.

``save`` writes what Docker 25 writes: an OCI image layout (``oci-layout``,
``index.json``, ``blobs/sha256``) that also carries ``manifest.json`` and
``repositories``, so both ``docker load`` (old and new) and OCI tools read it.
Blobs are written as stored, so a save/load round trip keeps every digest
(and so a zstd layer stays zstd: Docker 20.10 cannot load those, 23+ can).

``load`` reads that layout (OCI path, keeps manifest digests) or the legacy
``docker save`` layout (``<id>/layer.tar``, ``<config hex>.json``,
``manifest.json``), for which it writes a new OCI manifest. It also reads an
OCI layout directory. Every blob is checked against its digest and every layer
against the config's diff_ids; on any error the blobs it added are removed and
no image is registered.

``import_rootfs`` turns a root filesystem tar (plain, gzip or zstd) into a
one-layer image, as ``docker import`` does, with ``--change`` instructions.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import json
import os
import shlex
import stat
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import zstandard

from engine.base.arch import host_arch
from engine.base.files import write_atomic
from engine.base.inroot import BENEATH, Root
from engine.errors import EngineError, InvalidArgument, NotFound
from engine.images import store as im
from engine.images.content import ContentStore
from engine.images.layers import open_decompressed
from engine.images.reference import Reference, check_digest, parse
from engine.images.store import Image, ImageStore

_CHUNK = 1 << 20
class _HashingReader:
    """Reads through ``stream`` while hashing (and counting) what was read."""

    def __init__(self, stream: BinaryIO):
        self.stream, self.hash, self.size = stream, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def _drain(stream: BinaryIO) -> None:
    while stream.read(_CHUNK):
        pass


def _ingest_layer(content: ContentStore, stream: BinaryIO, expected_digest: str | None = None,
                  expected_size: int | None = None) -> tuple[str, str, str | None, int, bool]:
    """Store a layer blob as is; returns (blob digest, diff_id, compression, size, already there)."""
    with content.ingest(expected_digest, expected_size) as writer:
        tee = _TeeReader(stream, writer)
        try:
            plain, kind = open_decompressed(tee)
            hashing = _HashingReader(plain)
            _drain(hashing)
            _drain(tee)  # trailing bytes after the compressed stream are part of the blob
        except (OSError, EOFError, zstandard.ZstdError) as exc:
            raise InvalidArgument(f"a layer cannot be decompressed: {exc}") from None
        size = writer.bytes_written
        digest = writer.commit()
        return digest, hashing.digest, kind, size, writer.existed


class _TeeReader:
    def __init__(self, stream: BinaryIO, writer):
        self.stream, self.writer = stream, writer

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        if data:
            self.writer.write(data)
        return data


# --- sources: a tar or an OCI layout directory ---------------------------------------------


def _norm(name: str) -> str:
    """Archive member names compare without a leading "/" or "./"."""
    return str(PurePosixPath(name.lstrip("/")))


class _TarSource:
    def __init__(self, tar: tarfile.TarFile):
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in tar.getmembers():
            self.members[_norm(member.name)] = member

    def exists(self, name: str) -> bool:
        return _norm(name) in self.members

    def open(self, name: str) -> BinaryIO:
        member = self.members.get(_norm(name))
        if member is None:
            raise InvalidArgument(f"the archive has no {name}")
        try:
            f = self.tar.extractfile(member)
        except (KeyError, tarfile.TarError) as exc:
            raise InvalidArgument(f"the archive's {name} cannot be read: {exc}") from None
        if f is None:
            raise InvalidArgument(f"the archive's {name} is not a file")
        return f

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise InvalidArgument(f"the archive's {name} is too large")
        return data


class _DirSource:
    """An OCI layout directory: names (from its index and manifests) are opened inside it;
    a symlink that leaves it is refused (``engine.base.inroot``, BENEATH)."""

    def __init__(self, root: Path):
        self.root = root

    def exists(self, name: str) -> bool:
        try:
            with Root(self.root, BENEATH) as root:
                return stat.S_ISREG(root.stat(name).st_mode)
        except OSError:
            return False

    def open(self, name: str) -> BinaryIO:
        try:
            with Root(self.root, BENEATH) as root:
                return root.open_regular(name)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise InvalidArgument(f"{name} points outside {self.root}") from None
            raise InvalidArgument(f"{self.root} has no readable {name}") from None

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        with self.open(name) as f:
            return f.read(limit + 1)[:limit]


def _blob_name(digest: str) -> str:
    check_digest(digest)
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _json(data: bytes, what: str):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(f"{what} is not valid JSON") from None


# --- save ------------------------------------------------------------------------------------


def _select(store: ImageStore, names: Iterable[str]) -> list[tuple[Image, list[Reference]]]:
    """Images to save, each with the tags to record (a bare repository name means all its tags)."""
    chosen: dict[str, tuple[Image, list[Reference]]] = {}
    for name in names:
        tags: list[Reference] = []
        try:
            bare = parse(name, default_tag=False)
        except InvalidArgument:
            bare = None
        if bare is not None and bare.tag is None and bare.digest is None:
            matches = [img for img in store.list() if any(t.name == bare.name for t in img.tags)]
            if matches:
                for img in matches:
                    entry = chosen.setdefault(img.manifest_digest, (img, []))
                    entry[1].extend(t for t in img.tags if t.name == bare.name and t not in entry[1])
                continue
        image = store.get(name)
        if bare is not None and bare.tag and str(parse(name)) in {str(t) for t in image.tags}:
            tags = [parse(name)]
        entry = chosen.setdefault(image.manifest_digest, (image, []))
        entry[1].extend(t for t in tags if t not in entry[1])
    if not chosen:
        raise InvalidArgument("no image named to save")
    return list(chosen.values())


def save(store: ImageStore, names: Iterable[str], out_file: str | Path | BinaryIO) -> None:
    """Write the named images to a tar that ``docker load`` and OCI tools accept."""
    selected = _select(store, names)
    if isinstance(out_file, str | Path):
        path = Path(out_file)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                _write_save(store, selected, _TarSink(f))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    else:
        _write_save(store, selected, _TarSink(out_file))


class _TarSink:
    """Where ``save`` writes: a streamed tar."""

    def __init__(self, out: BinaryIO):
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.mtime = int(time.time())
        for name in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, self.mtime
            self.tar.addfile(info)

    def blob(self, name: str, size: int, stream: BinaryIO) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self.mtime, 0o644
        self.tar.addfile(info, stream)

    def file(self, name: str, data: bytes) -> None:
        self.blob(name, len(data), io.BytesIO(data))

    def index(self, manifests: list[dict]) -> None:
        self.file("index.json", json.dumps({"schemaVersion": 2, "mediaType": im.OCI_INDEX,
                                            "manifests": manifests}).encode())

    def close(self) -> None:
        self.tar.close()


class _DirSink:
    """Where ``export_layout`` writes: an OCI layout directory (merged with what is there)."""

    def __init__(self, root: Path):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def blob(self, name: str, size: int, stream: BinaryIO) -> None:
        path = self.root / name
        if path.exists() and path.stat().st_size == size:
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := stream.read(_CHUNK):
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def file(self, name: str, data: bytes) -> None:
        write_atomic(self.root / name, data, fsync=True, mode=0o600)

    def index(self, manifests: list[dict]) -> None:
        existing = []
        with contextlib.suppress(FileNotFoundError, ValueError, AttributeError):
            existing = json.loads((self.root / "index.json").read_text()).get("manifests") or []
        ours = {(m["digest"], json.dumps(m.get("annotations"), sort_keys=True)) for m in manifests}
        kept = [m for m in existing if isinstance(m, dict)
                and (m.get("digest"), json.dumps(m.get("annotations"), sort_keys=True)) not in ours]
        names = {(m.get("annotations") or {}).get(im.REF_NAME_ANNOTATION) for m in manifests} - {None}
        kept = [m for m in kept if (m.get("annotations") or {}).get(im.REF_NAME_ANNOTATION) not in names]
        self.file("index.json", json.dumps({"schemaVersion": 2, "mediaType": im.OCI_INDEX,
                                            "manifests": kept + manifests}, indent=1).encode())

    def close(self) -> None:
        pass


def export_layout(store: ImageStore, names: Iterable[str], directory: str | Path) -> None:
    """Write the named images into an OCI image layout directory (created or merged into).

    Each tag's ``org.opencontainers.image.ref.name`` is the full reference, so
    ``skopeo copy oci:DIR:docker.io/library/busybox:latest ...`` finds it.
    """
    sink = _DirSink(Path(directory))
    _write_save(store, _select(store, names), sink, full_ref_names=True)


def _write_save(store: ImageStore, selected: list[tuple[Image, list[Reference]]], sink,
                full_ref_names: bool = False) -> None:
    content = store.content
    with content.lease():
        written: set[str] = set()
        index, manifest_json, repositories = [], [], {}
        for image, tags in selected:
            for digest in [image.manifest_digest, image.id, *(layer.digest for layer in image.layers)]:
                if digest in written:
                    continue
                with content.open(digest) as f:
                    sink.blob(_blob_name(digest), content.size(digest), f)
                written.add(digest)
            media_type = image.manifest.get("mediaType", im.OCI_MANIFEST)
            descriptor = {"mediaType": media_type, "digest": image.manifest_digest,
                          "size": content.size(image.manifest_digest)}
            for ref in tags or [None]:
                desc = dict(descriptor)
                if ref is not None:
                    desc["annotations"] = {im.CONTAINERD_NAME_ANNOTATION: str(ref),
                                           im.REF_NAME_ANNOTATION: str(ref) if full_ref_names else ref.tag}
                index.append(desc)
            manifest_json.append({
                "Config": _blob_name(image.id),
                "RepoTags": [ref.familiar for ref in tags] or None,
                "Layers": [_blob_name(layer.digest) for layer in image.layers],
            })
            top = image.chain_ids[-1].removeprefix("sha256:") if image.layers else ""
            for ref in tags:
                repositories.setdefault(ref.familiar_name, {})[ref.tag] = top
        sink.file("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        sink.index(index)
        if isinstance(sink, _TarSink):
            sink.file("manifest.json", json.dumps(manifest_json).encode())
            if repositories:
                sink.file("repositories", json.dumps(repositories).encode())
        sink.close()


# --- load --------------------------------------------------------------------------------------


class _Loader:
    """One load: puts blobs, remembers the ones it added, registers at the end."""

    def __init__(self, store: ImageStore, source):
        self.store, self.content, self.source = store, store.content, source
        self.added: set[str] = set()
        self.pending: list[tuple[str, list[Reference], str | None]] = []  # manifest, refs, index digest

    def put_blob(self, digest: str, size: int | None = None) -> None:
        check_digest(digest)
        if self.content.has(digest):
            return
        name = _blob_name(digest)
        if not self.source.exists(name):
            raise InvalidArgument(f"the archive lacks blob {digest}")
        with self.source.open(name) as f:
            self.content.put_stream(f, digest, size)
        self.added.add(digest)

    def put_bytes(self, data: bytes) -> str:
        digest = _sha(data)
        if not self.content.has(digest):
            self.content.put(data, digest)
            self.added.add(digest)
        return digest

    def check_layers(self, manifest: dict, config: dict) -> None:
        """Verify every layer's uncompressed content against the config's diff_ids."""
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(manifest["layers"]):
            raise InvalidArgument(
                f"the image has {len(manifest['layers'])} layers but its config lists {len(diff_ids)} diff_ids"
            )
        for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
            with self.content.open(layer["digest"]) as f:
                plain, _ = open_decompressed(f)
                hashing = _HashingReader(plain)
                try:
                    _drain(hashing)
                except (OSError, EOFError, zstandard.ZstdError) as exc:
                    raise InvalidArgument(f"layer {layer['digest']} cannot be decompressed: {exc}") from None
            if hashing.digest != diff_id:
                raise InvalidArgument(
                    f"layer {layer['digest']} does not match its diff_id: expected {diff_id}, got {hashing.digest}"
                )

    # OCI layout --------------------------------------------------------------------------

    def load_oci(self, tags_by_config: dict[str, list[str]]) -> None:
        index = _json(self.source.read("index.json"), "index.json")
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise InvalidArgument("index.json is not an OCI image index")
        for desc in index["manifests"]:
            if not isinstance(desc, dict) or "digest" not in desc:
                raise InvalidArgument(f"index.json has a malformed descriptor: {desc!r}")
            refs = self._refs_from_annotations(desc.get("annotations") or {})
            media_type = desc.get("mediaType")
            index_digest = None
            manifest_digest = desc["digest"]
            self.put_blob(manifest_digest, desc.get("size"))
            if media_type in im.INDEX_TYPES:
                index_digest = manifest_digest
                manifest_digest = self._pick_platform(manifest_digest)
                self.put_blob(manifest_digest)
            manifest = im.parse_manifest(self.content.read(manifest_digest), manifest_digest)
            self.put_blob(manifest["config"]["digest"], manifest["config"]["size"])
            for layer in manifest["layers"]:
                self.put_blob(layer["digest"], layer["size"])
            config = _json(self.content.read(manifest["config"]["digest"]), "the image config")
            self.check_layers(manifest, config)
            if not refs:
                refs = [parse(t) for t in tags_by_config.get(manifest["config"]["digest"], [])]
            self.pending.append((manifest_digest, refs, index_digest))

    def _refs_from_annotations(self, annotations: dict) -> list[Reference]:
        name = annotations.get(im.CONTAINERD_NAME_ANNOTATION) or annotations.get(im.REF_NAME_ANNOTATION)
        if not name:
            return []
        try:
            ref = parse(name)
        except InvalidArgument:
            return []
        # a bare tag ("latest") in ref.name parses as library/latest: not a usable name
        if name == annotations.get(im.REF_NAME_ANNOTATION) and ("/" not in name and ":" not in name):
            return []
        return [ref]

    def _pick_platform(self, index_digest: str) -> str:
        index = _json(self.content.read(index_digest), f"index {index_digest}")
        arch = host_arch()
        candidates = [m for m in index.get("manifests", []) if isinstance(m, dict) and isinstance(m.get("digest"), str)]
        for want_arch in (arch, None):
            for m in candidates:
                plat = m.get("platform") or {}
                if plat.get("os") == "unknown":
                    continue
                present = self.source.exists(_blob_name(m["digest"])) or self.content.has(m["digest"])
                if (want_arch is None or plat.get("architecture") == want_arch) and present:
                    return m["digest"]
        raise InvalidArgument(f"index {index_digest} in the archive has no manifest for this platform ({arch})")

    # legacy docker save ------------------------------------------------------------------------

    def load_manifest_json(self, entries: list) -> None:
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                    or not isinstance(entry.get("Layers"), list):
                raise InvalidArgument("manifest.json entries need Config and Layers")
            config_bytes = self.source.read(entry["Config"])
            config_digest = _sha(config_bytes)
            stem = PurePosixPath(entry["Config"]).name.removesuffix(".json")
            if len(stem) == 64 and "sha256:" + stem != config_digest:
                raise InvalidArgument(f"{entry['Config']} does not match its digest: it hashes to {config_digest}")
            config = _json(config_bytes, entry["Config"])
            diff_ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
            if not isinstance(diff_ids, list) or len(diff_ids) != len(entry["Layers"]):
                raise InvalidArgument(f"{entry['Config']} lists {len(diff_ids or [])} diff_ids for "
                                      f"{len(entry['Layers'])} layers")
            layers = []
            for layer_name, diff_id in zip(entry["Layers"], diff_ids, strict=True):
                with self.source.open(layer_name) as f:
                    digest, actual_diff, kind, size, existed = _ingest_layer(self.content, f)
                if not existed:
                    self.added.add(digest)
                if actual_diff != diff_id:
                    raise InvalidArgument(
                        f"layer {layer_name} does not match the image config: expected diff_id {diff_id}, "
                        f"got {actual_diff}"
                    )
                media_type = {None: im.OCI_LAYER, "gzip": im.OCI_LAYER_GZIP, "zstd": im.OCI_LAYER_ZSTD}[kind]
                layers.append({"mediaType": media_type, "digest": digest, "size": size})
            self.put_bytes(config_bytes)
            manifest = {
                "schemaVersion": 2,
                "mediaType": im.OCI_MANIFEST,
                "config": {"mediaType": im.OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                "layers": layers,
            }
            manifest_digest = self.put_bytes(json.dumps(manifest, indent=2).encode())
            refs = [parse(t) for t in entry.get("RepoTags") or []]
            self.pending.append((manifest_digest, refs, None))

    def register_all(self) -> list[Image]:
        # check everything is registrable before naming anything
        for manifest_digest, _, _ in self.pending:
            im.parse_manifest(self.content.read(manifest_digest), manifest_digest)
        loaded: dict[str, Image] = {}
        for manifest_digest, refs, index_digest in self.pending:
            image = self.store.register(manifest_digest, refs[0] if refs else None, index_digest)
            for ref in refs[1:]:
                image = self.store.register(manifest_digest, ref, index_digest)
            loaded[manifest_digest] = image
        return list(loaded.values())


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def _open_source(store: ImageStore, tar_file):
    """A tar file, a file object (spooled to disk if it cannot seek) or an OCI layout directory."""
    if isinstance(tar_file, str | Path) and Path(tar_file).is_dir():
        yield _DirSource(Path(tar_file))
        return
    with contextlib.ExitStack() as stack:
        if isinstance(tar_file, str | Path):
            try:
                fileobj = stack.enter_context(open(tar_file, "rb"))
            except OSError as exc:
                raise NotFound(f"cannot open {tar_file}: {exc.strerror}") from None
        elif hasattr(tar_file, "seekable") and tar_file.seekable():
            fileobj = tar_file
        else:
            fileobj = stack.enter_context(tempfile.TemporaryFile(dir=store.content.ingest_dir))
            while chunk := tar_file.read(_CHUNK):
                fileobj.write(chunk)
            fileobj.seek(0)
        try:
            tar = stack.enter_context(tarfile.open(fileobj=fileobj, mode="r:*"))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InvalidArgument(f"not a valid image archive (tar): {exc}") from None
        try:
            yield _TarSource(tar)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise InvalidArgument(f"the image archive is damaged: {exc}") from None


def load(store: ImageStore, tar_file: str | Path | BinaryIO) -> list[Image]:
    """Load images from a ``docker save`` tar (legacy or OCI), an OCI layout tar or directory."""
    loader = None
    try:
        with _open_source(store, tar_file) as source, store.content.lease():
            loader = _Loader(store, source)
            tags_by_config: dict[str, list[str]] = {}
            entries = None
            if source.exists("manifest.json"):
                entries = _json(source.read("manifest.json"), "manifest.json")
                if not isinstance(entries, list):
                    raise InvalidArgument("manifest.json is not a list")
                for entry in entries:
                    if isinstance(entry, dict) and isinstance(entry.get("Config"), str):
                        stem = PurePosixPath(entry["Config"]).name.removesuffix(".json")
                        tags_by_config["sha256:" + stem] = entry.get("RepoTags") or []
            if source.exists("index.json") and source.exists("oci-layout"):
                loader.load_oci(tags_by_config)
            elif entries is not None:
                loader.load_manifest_json(entries)
            elif source.exists("repositories"):
                raise InvalidArgument("this archive is in the pre-1.10 Docker format (no manifest.json); "
                                      "it is not supported")
            else:
                raise InvalidArgument("not an image archive: it has neither manifest.json nor an OCI index.json")
            if not loader.pending:
                raise InvalidArgument("the archive contains no image")
            return loader.register_all()
    except BaseException:
        if loader is not None and loader.added:
            with contextlib.suppress(EngineError):  # e.g. the caller holds a lease: prune cleans later
                store.discard_blobs(loader.added)
        raise


# --- import ------------------------------------------------------------------------------------


_CHANGE_KEYS = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "WORKDIR", "VOLUME", "STOPSIGNAL", "ONBUILD"}


def _exec_form(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return parsed
    return ["/bin/sh", "-c", value]


def _key_values(value: str, instruction: str) -> list[tuple[str, str]]:
    parts = shlex.split(value)
    if len(parts) >= 2 and "=" not in parts[0]:  # legacy "ENV KEY value words"
        return [(parts[0], value.strip()[len(parts[0]):].strip())]
    out = []
    for part in parts:
        key, sep, val = part.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{instruction} needs KEY=VALUE pairs, got {part!r}")
        out.append((key, val))
    return out


def apply_changes(config: dict, changes: Iterable[str]) -> dict:
    """Apply Dockerfile-style instructions (``docker import --change``) to a container config."""
    for change in changes:
        instruction, _, value = change.strip().partition(" ")
        key = instruction.upper()
        if key not in _CHANGE_KEYS:
            raise InvalidArgument(f"{instruction or change!r} is not a valid change command "
                                  f"(use one of {', '.join(sorted(_CHANGE_KEYS))})")
        if not value.strip():
            raise InvalidArgument(f"{key} needs a value")
        if key == "CMD":
            config["Cmd"] = _exec_form(value)
        elif key == "ENTRYPOINT":
            config["Entrypoint"] = _exec_form(value)
        elif key == "ENV":
            env = [e for e in config.get("Env") or []]
            for k, v in _key_values(value, key):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            config["Env"] = env
        elif key == "LABEL":
            config.setdefault("Labels", {}).update(dict(_key_values(value, key)))
        elif key == "EXPOSE":
            for port in value.split():
                number, _, proto = port.partition("/")
                if not number.isdigit() or not 0 < int(number) < 65536 or proto not in ("", "tcp", "udp", "sctp"):
                    raise InvalidArgument(f"EXPOSE: invalid port {port!r}")
                config.setdefault("ExposedPorts", {})[f"{int(number)}/{proto or 'tcp'}"] = {}
        elif key == "VOLUME":
            for vol in _exec_form(value) if value.strip().startswith("[") else value.split():
                config.setdefault("Volumes", {})[vol] = {}
        elif key == "USER":
            config["User"] = value.strip()
        elif key == "WORKDIR":
            config["WorkingDir"] = value.strip()
        elif key == "STOPSIGNAL":
            config["StopSignal"] = value.strip()
        elif key == "ONBUILD":
            config.setdefault("OnBuild", []).append(value.strip())
    return config


def _check_rootfs_tar(fileobj: BinaryIO) -> None:
    """Refuse what is not a tar, or a tar with entries escaping its root."""
    fileobj.seek(0)
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as tar:
            count = 0
            for member in tar:
                count += 1
                parts = PurePosixPath(member.name).parts
                if ".." in parts:
                    raise InvalidArgument(f"refusing to import: entry {member.name!r} points outside the root")
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidArgument(f"not a valid root filesystem tar: {exc}") from None
    if count == 0:
        raise InvalidArgument("not a valid root filesystem tar: it is empty")


def import_rootfs(store: ImageStore, tar_file: str | Path | BinaryIO, ref: str | Reference | None = None,
                  changes: Iterable[str] = (), message: str | None = None, cmd: list[str] | None = None,
                  architecture: str | None = None) -> Image:
    """Make a one-layer image from a root filesystem tar (plain, gzip or zstd), as ``docker import``."""
    target = parse(ref) if isinstance(ref, str) else ref
    if target is not None and target.digest:
        raise InvalidArgument("an imported image cannot be named by digest")
    container_config: dict = {}
    if cmd:
        container_config["Cmd"] = list(cmd)
    apply_changes(container_config, changes)
    source_name = str(tar_file) if isinstance(tar_file, str | Path) else "-"
    content = store.content
    added: set[str] = set()
    try:
        with contextlib.ExitStack() as stack:
            if isinstance(tar_file, str | Path):
                try:
                    raw = stack.enter_context(open(tar_file, "rb"))
                except OSError as exc:
                    raise NotFound(f"cannot open {tar_file}: {exc.strerror}") from None
            else:
                raw = tar_file
            # 1. the plain tar, spooled and hashed (its digest is the diff_id)
            spool = stack.enter_context(tempfile.TemporaryFile(dir=content.ingest_dir))
            try:
                plain, _ = open_decompressed(raw)
                hashing = _HashingReader(plain)
                while chunk := hashing.read(_CHUNK):
                    spool.write(chunk)
            except (OSError, EOFError, zstandard.ZstdError) as exc:
                raise InvalidArgument(f"cannot decompress {source_name}: {exc}") from None
            spool.flush()
            diff_id = hashing.digest
            _check_rootfs_tar(spool)
            # 2. the layer blob, gzip-compressed as a registry expects
            stack.enter_context(content.lease())
            spool.seek(0)
            with content.ingest() as writer:
                with gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=6, mtime=0) as gz:
                    while chunk := spool.read(_CHUNK):
                        gz.write(chunk)
                layer_size = writer.bytes_written
                layer_digest = writer.commit()
            if not writer.existed:
                added.add(layer_digest)
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            config = {
                "architecture": architecture or host_arch(),
                "os": "linux",
                "created": now,
                "config": container_config,
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": now, "created_by": "",
                             "comment": message or f"Imported from {source_name}"}],
            }
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            config_digest = content.put(config_bytes)
            added.add(config_digest)
            manifest = {
                "schemaVersion": 2,
                "mediaType": im.OCI_MANIFEST,
                "config": {"mediaType": im.OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                "layers": [{"mediaType": im.OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
            }
            manifest_digest = content.put(json.dumps(manifest, indent=2).encode())
            added.add(manifest_digest)
            return store.register(manifest_digest, target)
    except BaseException:
        if added and not _registered(store, added):
            with contextlib.suppress(EngineError):
                store.discard_blobs(added)
        raise


def _registered(store: ImageStore, digests: set[str]) -> bool:
    try:
        return any(image.manifest_digest in digests for image in store.list())
    except EngineError:
        return False
