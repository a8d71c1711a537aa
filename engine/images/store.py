"""Local images: manifests and configs in the content store, plus names for them.

An image is a manifest (OCI or Docker schema 2) whose config and layers are all
in the content store. Its ID is the config digest, as in Docker. Names live in
``root/images/repositories.json``::

    {"version": 1,
     "images":  {"<manifest digest>": {"id": "<config digest>", "index_digest": null,
                                        "registered": "<RFC 3339>"}},
     "tags":    {"docker.io/library/busybox:latest": "<manifest digest>"},
     "digests": {"docker.io/library/busybox@sha256:...": "<manifest digest>"}}

It is rewritten atomically (temp file + rename) under the flock ``images/lock``;
readers need no lock. Each write also refreshes ``content/index.json`` so the
content directory is a valid OCI image layout with the tags as
``org.opencontainers.image.ref.name`` annotations (a mirror, never read back).

Removal follows ``docker rmi``; blobs are deleted only when no remaining image
uses them, under the content store's exclusive gc lock, after the metadata no
longer points at them (so a crash leaves orphan blobs, never broken images).
``Image.size`` is the sum of the layers' blob sizes as stored (compressed).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.base.clock import now_rfc3339_seconds
from engine.base.files import lock, write_atomic
from engine.config import EngineConfig
from engine.errors import Conflict, EngineError, InvalidArgument, NotFound
from engine.images.content import ContentStore
from engine.images.reference import Reference, is_image_id, parse

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = DOCKER_LAYER + ".gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+json"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
LAYER_TYPES = {
    OCI_LAYER: None,
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": None,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    DOCKER_LAYER: None,
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_LAYER_FOREIGN: "gzip",
}
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"


def layer_compression(media_type: str) -> str | None:
    """"gzip", "zstd" or None (plain tar) for a layer media type; InvalidArgument if unknown."""
    if media_type not in LAYER_TYPES:
        raise InvalidArgument(f"unsupported layer media type {media_type!r}")
    return LAYER_TYPES[media_type]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def parse_manifest(data: bytes, digest: str = "manifest") -> dict:
    """Parse and check an image manifest (not an index); clear errors for what we do not take."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(f"{digest} is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise InvalidArgument(f"{digest} is not a manifest object")
    media_type = manifest.get("mediaType")
    if manifest.get("schemaVersion") == 1 or media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise InvalidArgument(f"{digest} is a Docker schema 1 manifest, which is deprecated and not supported")
    if media_type in INDEX_TYPES or (media_type is None and "manifests" in manifest):
        raise InvalidArgument(f"{digest} is an image index, not an image manifest; pick a platform first")
    if media_type not in (None, *MANIFEST_TYPES):
        raise InvalidArgument(f"{digest} has unsupported manifest media type {media_type!r}")
    config = manifest.get("config")
    layers = manifest.get("layers")
    if manifest.get("schemaVersion") != 2 or not isinstance(config, dict) or not isinstance(layers, list):
        raise InvalidArgument(f"{digest} is not an image manifest (needs schemaVersion 2, config and layers)")
    for desc in [config, *layers]:
        if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str) or "size" not in desc:
            raise InvalidArgument(f"{digest} has a malformed descriptor: {desc!r}")
    if config.get("mediaType") not in CONFIG_TYPES:
        raise InvalidArgument(f"{digest}: config media type {config.get('mediaType')!r} is not an image config")
    for layer in layers:
        layer_compression(layer.get("mediaType", ""))
    return manifest


@dataclass
class LayerInfo:
    digest: str
    media_type: str
    size: int
    diff_id: str


@dataclass
class Image:
    id: str
    manifest_digest: str
    repo_tags: list[str]
    repo_digests: list[str]
    config: dict
    manifest: dict
    layers: list[LayerInfo]
    created: str
    size: int  # sum of the layer blobs as stored (compressed)
    index_digest: str | None = None
    tags: list[Reference] = field(default_factory=list)  # the tags, fully qualified
    parent: str = ""  # the image it was built or committed from (Docker's "Parent"), if known

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def dangling(self) -> bool:
        return not self.repo_tags

    @property
    def platform(self) -> str:
        parts = [self.config.get("os", ""), self.config.get("architecture", ""), self.config.get("variant", "")]
        return "/".join(p for p in parts if p)

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    def inspect(self) -> dict:
        """What ``docker image inspect`` shows, plus the layers with their sizes and media types."""
        cfg = self.config
        return {
            "Id": self.id,
            "RepoTags": self.repo_tags,
            "RepoDigests": self.repo_digests,
            "Parent": self.parent,
            "Comment": (cfg.get("history") or [{}])[-1].get("comment", ""),
            "Created": self.created,
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": cfg.get("config") or {},
            "Architecture": cfg.get("architecture", ""),
            "Variant": cfg.get("variant", ""),
            "Os": cfg.get("os", ""),
            "Size": self.size,
            "RootFS": {"Type": (cfg.get("rootfs") or {}).get("type", "layers"), "Layers": self.diff_ids},
            "Layers": [{"Digest": layer.digest, "MediaType": layer.media_type, "Size": layer.size,
                        "DiffID": layer.diff_id} for layer in self.layers],
            "History": cfg.get("history") or [],
            "ManifestDigest": self.manifest_digest,
            "ManifestMediaType": self.manifest.get("mediaType", ""),
            "IndexDigest": self.index_digest,
            "Metadata": {"LastTagTime": ""},
        }

    def history(self) -> list[dict]:
        """The config's history, newest first, with each non-empty step's layer size."""
        layers = list(self.layers)
        rows = []
        history = self.config.get("history") or [{} for _ in layers]
        for step in history:
            size = 0
            if not step.get("empty_layer") and layers:
                size = layers.pop(0).size
            rows.append({"CreatedAt": step.get("created", ""), "CreatedBy": step.get("created_by", ""),
                         "Size": size, "Comment": step.get("comment", "")})
        rows.reverse()
        for i, row in enumerate(rows):
            row["ID"] = self.id if i == 0 else "<missing>"
        return rows

    def blobs(self) -> set[str]:
        """Every blob this image keeps alive."""
        out = {self.manifest_digest, self.id, *(layer.digest for layer in self.layers)}
        if self.index_digest:
            out.add(self.index_digest)
        return out


def _empty_db() -> dict:
    return {"version": 1, "images": {}, "tags": {}, "digests": {}}


class ImageStore:
    def __init__(self, config: EngineConfig, content: ContentStore | None = None):
        self.engine_config = config
        self.content = content or ContentStore(config)
        self.dir = config.subdir("images")
        self.db_path = self.dir / "repositories.json"
        self._lock_path = self.dir / "lock"
        self._in_use_checks: list[Callable[[str], list[str]]] = []
        self._delete_hooks: list[Callable[[Image], None]] = []
        self._json_cache: dict[str, dict] = {}  # blobs never change, so parsed ones are kept
        self._sizes: dict[str, int] = {}

    # --- metadata file -------------------------------------------------------

    def _load(self) -> dict:
        try:
            data = json.loads(self.db_path.read_text())
        except FileNotFoundError:
            return _empty_db()
        except ValueError:
            raise EngineError(f"{self.db_path} is corrupt; restore it or remove it to forget all tags") from None
        for key, value in _empty_db().items():
            data.setdefault(key, value)
        return data

    @contextlib.contextmanager
    def _editing(self):
        """Read-modify-write the metadata under its lock; written only if the block succeeds."""
        with lock(self._lock_path, exclusive=True):
            data = self._load()
            yield data
            write_atomic(self.db_path, json.dumps(data, sort_keys=True, separators=(",", ":")).encode(), fsync=True,
                         mode=0o600)
            self._write_oci_index(data)

    def _write_oci_index(self, data: dict) -> None:
        manifests = []
        tagged = set()
        for name, manifest_digest in sorted(data["tags"].items()):
            desc = self._descriptor(manifest_digest)
            if desc:
                desc["annotations"] = {REF_NAME_ANNOTATION: name, CONTAINERD_NAME_ANNOTATION: name}
                manifests.append(desc)
                tagged.add(manifest_digest)
        for manifest_digest in sorted(set(data["images"]) - tagged):
            desc = self._descriptor(manifest_digest)
            if desc:
                manifests.append(desc)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        write_atomic(self.content.root / "index.json", json.dumps(index, separators=(",", ":")).encode(),
                     fsync=False, mode=0o600)

    def _descriptor(self, manifest_digest: str) -> dict | None:
        try:
            manifest = self._blob_json(manifest_digest)
        except EngineError:
            return None
        size = self._sizes[manifest_digest]
        return {"mediaType": manifest.get("mediaType", OCI_MANIFEST), "digest": manifest_digest, "size": size}

    def _blob_json(self, digest: str) -> dict:
        cached = self._json_cache.get(digest)
        if cached is None:
            raw = self.content.read(digest)
            try:
                cached = json.loads(raw)
            except ValueError:
                raise EngineError(f"blob {digest} is not valid JSON") from None
            self._json_cache[digest] = cached
            self._sizes[digest] = len(raw)
        return cached

    # --- building Image objects ----------------------------------------------

    @staticmethod
    def _names_by_manifest(data: dict, only: str | None = None):
        """(tags, repo digests) as References, by manifest digest (or just for ``only``)."""
        tags: dict[str, list[Reference]] = {}
        digests: dict[str, list[Reference]] = {}
        for table, out in (("tags", tags), ("digests", digests)):
            for name, target in data[table].items():
                if only is None or target == only:
                    out.setdefault(target, []).append(parse(name))
        return tags, digests

    def _image(self, data: dict, manifest_digest: str, names=None) -> Image:
        record = data["images"][manifest_digest]
        try:
            manifest = copy.deepcopy(self._blob_json(manifest_digest))
            config = copy.deepcopy(self._blob_json(manifest["config"]["digest"]))
        except NotFound as exc:
            raise EngineError(f"image {manifest_digest} is damaged: {exc}") from None
        tags_by, digests_by = names or self._names_by_manifest(data, only=manifest_digest)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        layers = [
            LayerInfo(layer["digest"], layer.get("mediaType", ""), int(layer["size"]),
                      diff_ids[i] if i < len(diff_ids) else "")
            for i, layer in enumerate(manifest["layers"])
        ]
        tags = sorted(tags_by.get(manifest_digest, []), key=str)
        digests = sorted(digests_by.get(manifest_digest, []), key=str)
        return Image(
            id=record["id"],
            manifest_digest=manifest_digest,
            repo_tags=[ref.familiar for ref in tags],
            repo_digests=[f"{ref.familiar_name}@{ref.digest}" for ref in digests],
            config=config,
            manifest=manifest,
            layers=layers,
            created=config.get("created", ""),
            size=sum(layer.size for layer in layers),
            index_digest=record.get("index_digest"),
            tags=tags,
            parent=record.get("parent") or "",
        )

    # --- registering -----------------------------------------------------------

    def register(self, manifest_digest: str, ref: Reference | None = None,
                 index_digest: str | None = None, parent: str | None = None) -> Image:
        """Record an image whose blobs are all in the content store, and name it.

        ``ref`` may carry a tag (it moves to this image), a digest (which must be the
        manifest's or the index's), or both. ``parent``: the ID of the image this one was
        built or committed from (an untagged parent is an intermediate image: hidden from
        the default listing, deleted with its last child). Nothing is recorded if anything
        is missing.
        """
        with self.content.lease():
            manifest = parse_manifest(self.content.read(manifest_digest), manifest_digest)
            config_digest = manifest["config"]["digest"]
            if not self.content.has(config_digest):
                raise NotFound(f"config {config_digest} of {manifest_digest} is not in the content store")
            try:
                config = json.loads(self.content.read(config_digest))
                diff_ids = config["rootfs"]["diff_ids"]
                assert isinstance(diff_ids, list)
            except (ValueError, KeyError, TypeError, AssertionError):
                raise InvalidArgument(f"config {config_digest} is not an image config with rootfs.diff_ids") from None
            if len(diff_ids) != len(manifest["layers"]):
                raise InvalidArgument(
                    f"{manifest_digest} has {len(manifest['layers'])} layers but its config lists "
                    f"{len(diff_ids)} diff_ids"
                )
            for layer in manifest["layers"]:
                if not self.content.has(layer["digest"]):
                    raise NotFound(f"layer {layer['digest']} of {manifest_digest} is not in the content store")
            if ref is not None and ref.digest and ref.digest not in (manifest_digest, index_digest):
                raise InvalidArgument(f"{ref} does not name manifest {manifest_digest}")
            with self._editing() as data:
                record = data["images"].get(manifest_digest) or {"registered": now_rfc3339_seconds()}
                record["id"] = config_digest
                if index_digest:
                    record["index_digest"] = index_digest
                else:
                    record.setdefault("index_digest", None)
                if parent and parent != config_digest:
                    record["parent"] = parent
                data["images"][manifest_digest] = record
                if ref is not None:
                    if ref.tag:
                        data["tags"][str(Reference(ref.registry, ref.repository, ref.tag))] = manifest_digest
                    repo_digest = ref.digest or index_digest or manifest_digest
                    data["digests"][f"{ref.name}@{repo_digest}"] = manifest_digest
            return self._image(data, manifest_digest)

    # --- looking up ------------------------------------------------------------

    def _resolve(self, data: dict, text: str) -> tuple[list[str], str | None]:
        """Return (manifest digests, the tag/digest key used or None when found by id)."""
        ref, error = None, None
        try:
            ref = parse(text)
        except InvalidArgument as exc:
            error = exc
        if ref is not None and not (is_image_id(text) and text.startswith("sha256:")):
            if ref.digest:
                key = f"{ref.name}@{ref.digest}"
                if key in data["digests"]:
                    return [data["digests"][key]], key
                for manifest_digest, record in data["images"].items():
                    if ref.digest in (manifest_digest, record.get("index_digest")) and any(
                        name.startswith(ref.name + ":") and target == manifest_digest
                        for name, target in data["tags"].items()
                    ):
                        return [manifest_digest], None
            else:
                key = str(ref)
                if key in data["tags"]:
                    return [data["tags"][key]], key
        hexpart = text.removeprefix("sha256:")
        if hexpart and all(c in "0123456789abcdef" for c in hexpart):
            matches = sorted({record["id"] for record in data["images"].values()
                              if record["id"].removeprefix("sha256:").startswith(hexpart)})
            if len(matches) > 1:
                raise InvalidArgument(f"image ID prefix {text!r} is ambiguous: it matches {len(matches)} images")
            if matches:
                return _manifests_of(data, matches[0]), None
        if error is not None and not is_image_id(text):
            raise error
        raise NotFound(f"No such image: {ref.familiar if ref else text}")

    def get(self, name_or_id: str) -> Image:
        data = self._load()
        manifests, _ = self._resolve(data, name_or_id)
        return self._image(data, manifests[0])

    def exists(self, name_or_id: str) -> bool:
        try:
            self.get(name_or_id)
            return True
        except NotFound:
            return False

    def list(self, all: bool = False) -> list[Image]:
        """Every image, newest first; without ``all`` (Docker's ``-a``), not the intermediate
        ones (untagged parents of other images: a build's steps)."""
        data = self._load()
        names = self._names_by_manifest(data)
        parents = _parents(data)
        images = []
        for manifest_digest in data["images"]:
            try:
                image = self._image(data, manifest_digest, names)
            except EngineError:
                continue  # damaged: blobs lost; `image prune` will clean it
            if all or image.repo_tags or image.id not in parents:
                images.append(image)
        images.sort(key=lambda img: (img.created, img.id), reverse=True)
        return images

    # --- naming ------------------------------------------------------------------

    def tag(self, source: str, target: str) -> None:
        ref = parse(target)
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target!r}")
        with self._editing() as data:
            manifests, _ = self._resolve(data, source)
            data["tags"][str(ref)] = manifests[0]

    def untag(self, name: str) -> None:
        """Remove one tag or repo digest; the image stays (dangling if it was the last tag)."""
        ref = parse(name)
        with self._editing() as data:
            if ref.digest:
                key = f"{ref.name}@{ref.digest}"
                if data["digests"].pop(key, None) is None:
                    raise NotFound(f"No such image: {ref.familiar}")
            elif data["tags"].pop(str(ref), None) is None:
                raise NotFound(f"No such image: {ref.familiar}")

    # --- in-use checks and hooks -------------------------------------------------

    def add_in_use_check(self, check: Callable[[str], list[str]]) -> None:
        """``check(image_id)`` returns the names of containers using that image."""
        self._in_use_checks.append(check)

    def add_delete_hook(self, hook: Callable[[Image], None]) -> None:
        """``hook(image)`` runs after an image is deleted (e.g. to drop unpacked layers)."""
        self._delete_hooks.append(hook)

    def users(self, image_id: str) -> list[str]:
        out: list[str] = []
        for check in self._in_use_checks:
            out.extend(check(image_id))
        return out

    # --- removing ------------------------------------------------------------------

    def remove(self, name_or_id: str, force: bool = False) -> list[str]:
        """``docker rmi``: untag, and delete the image when nothing names or uses it.

        By name: removes that tag (and the repository's digest references once its
        last tag in that repository is gone); the image is deleted when no name is
        left. By ID: refuses an image tagged in several repositories unless forced.
        An image a container uses is refused unless forced; forced, it is untagged
        but kept, because the container still needs its layers.
        """
        lines: list[str] = []
        deleted: list[Image] = []
        with self.content.gc_lock(), self._editing() as data:
            manifests, key = self._resolve(data, name_or_id)
            image_id = data["images"][manifests[0]]["id"]
            short = image_id.removeprefix("sha256:")[:12]
            users = self.users(image_id)
            refs = _names_of(data, manifests)
            if key is not None:
                drop = [key]
                ref = parse(key)
                if not ref.digest and not any(
                    k != key and parse(k).name == ref.name for k in refs if k in data["tags"]
                ):
                    drop += [k for k in refs if k in data["digests"] and parse(k).name == ref.name]
                if users and not force and set(refs) <= set(drop):
                    raise Conflict(
                        f'unable to remove repository reference "{name_or_id}" (must force) - '
                        f"container {users[0]} is using its referenced image {short}"
                    )
            else:
                if _children(data, image_id) and not refs:
                    # Nothing to untag and not deletable (as dockerd; with names, they go and
                    # the image stays for its children).
                    raise Conflict(f"unable to delete {short} (cannot be forced) - image has dependent child images")
                repos = {parse(k).name for k in refs}
                if len(repos) > 1 and not force:
                    raise Conflict(
                        f"unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                    )
                if users and not force:
                    raise Conflict(
                        f"unable to delete {short} (must be forced) - image is being used by "
                        f"container{'s' if len(users) > 1 else ''} {', '.join(users)}"
                    )
                drop = refs
            for k in drop:
                data["tags"].pop(k, None)
                data["digests"].pop(k, None)
                lines.append(f"Untagged: {parse(k).familiar}")
            # Deleted when nothing names, uses or needs it (with children it stays, untagged:
            # an intermediate image of theirs); then its build steps, on the same terms.
            doomed, steps, in_use = image_id, manifests, users
            while steps and not in_use and not _names_of(data, steps) and not _children(data, doomed):
                deleted += [self._image(data, m) for m in steps]
                for m in steps:
                    del data["images"][m]
                lines.append(f"Deleted: {doomed}")
                doomed = deleted[-1].parent
                steps, in_use = (_manifests_of(data, doomed), self.users(doomed)) if doomed else ([], [])
        if deleted:
            self._delete_unused_blobs(deleted)
            self._run_delete_hooks(deleted)
            _collect(self.engine_config)
        return lines

    def prune(self, all: bool = False) -> tuple[list[str], int]:
        """Delete dangling images (no tag), or with ``all`` every image no container uses.

        Also removes blobs no image references (left by interrupted pulls) and stale
        ingest files. Returns the deleted image IDs and the bytes reclaimed.
        """
        with self.content.gc_lock():
            deleted: list[Image] = []
            with self._editing() as data:
                names = self._names_by_manifest(data)
                removed_one = True
                while removed_one:  # children first: a deleted child may free its parent
                    removed_one = False
                    for manifest_digest in list(data["images"]):
                        try:
                            image = self._image(data, manifest_digest, names)
                        except EngineError:
                            image = None  # damaged: its blobs are gone
                        if image is not None:
                            if image.repo_tags and not all:
                                continue
                            if self.users(image.id) or _children(data, image.id):
                                continue
                            deleted.append(image)
                        for table in ("tags", "digests"):
                            for k in [k for k, v in data[table].items() if v == manifest_digest]:
                                del data[table][k]
                        del data["images"][manifest_digest]
                        removed_one = True
            reclaimed = self._delete_unused_blobs(deleted, orphans=True)
            reclaimed += self.content._clean_ingest()
        self._run_delete_hooks(deleted)
        report = _collect(self.engine_config)  # the unpacked layers of what went, and trash
        if report is not None:
            reclaimed += report.reclaimed
        ids = sorted({image.id for image in deleted})
        return ids, reclaimed

    def _delete_unused_blobs(self, deleted: list[Image], orphans: bool = False) -> int:
        """Delete blobs of ``deleted`` (or every unreferenced blob) that no image keeps alive."""
        candidates = set().union(*(image.blobs() for image in deleted)) if deleted else set()
        if orphans:
            candidates |= set(self.content.digests())
        return self.discard_blobs(candidates)

    def discard_blobs(self, candidates) -> int:
        """Delete those of ``candidates`` that no registered image uses; returns bytes freed.

        For writers that gave up half-way (a failed load or import): they call it after
        leaving their lease.
        """
        with self.content.gc_lock():
            keep: set[str | None] = set()
            for m, record in self._load()["images"].items():
                keep |= {m, record["id"], record.get("index_digest")}
                with contextlib.suppress(EngineError, KeyError, TypeError):
                    keep |= {layer["digest"] for layer in self._blob_json(m)["layers"]}
            reclaimed = 0
            for digest in set(candidates) - keep:
                with contextlib.suppress(NotFound):
                    reclaimed += self.content.size(digest)
                    self.content.delete(digest)
                    self._json_cache.pop(digest, None)
            return reclaimed

    def _run_delete_hooks(self, deleted: list[Image]) -> None:
        for image in deleted:
            for hook in self._delete_hooks:
                hook(image)

    def disk_usage(self) -> int:
        """Bytes used by all blobs."""
        return sum(self.content.size(d) for d in self.content.digests())



def _collect(config: EngineConfig):
    """After a removal: the garbage collector gives back what nothing uses any more."""
    from engine.system import gc

    return gc.after_removal(config)


def _parents(data: dict) -> set[str]:
    """IDs of the images that other images were built or committed from."""
    return {record["parent"] for record in data["images"].values() if record.get("parent")}


def _manifests_of(data: dict, image_id: str) -> list[str]:
    """The manifests registered for an image ID (one, or a few formats of the same config)."""
    return [m for m, record in data["images"].items() if record["id"] == image_id]


def _names_of(data: dict, manifests: list[str]) -> list[str]:
    """The tags and repo digests that point at any of ``manifests``."""
    return [k for k in (*data["tags"], *data["digests"])
            if data["tags"].get(k, data["digests"].get(k)) in manifests]


def _children(data: dict, image_id: str) -> list[str]:
    """Manifests of the images built or committed from ``image_id``."""
    return [m for m, record in data["images"].items() if record.get("parent") == image_id]
