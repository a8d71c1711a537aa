"""Pull and push images between a registry and the local store.

Pull: resolve the reference (an index picks one platform), fetch the config,
then the layers in parallel, each streamed into the content store's verified
ingest while its uncompressed bytes are hashed against ``rootfs.diff_ids``.
Blobs are digested as received and checked before they are committed, and the
manifest (and index) go in last, so an interrupted or lying pull leaves nothing
behind that an image refers to; the next pull fetches what is missing.

Push: layers (skipped when the registry has them, mounted from another
repository of the same registry the image came from, else uploaded), then the
config, then the manifest with its media type.

Credentials are only those passed in: the console passes its own, the CLI reads
``config.json`` (``engine.distribution.credentials``).

Progress: ``progress({"id": <12 hex of the layer digest>, "status": ..., "current": bytes,
"total": bytes})``, called from one thread at a time, with byte counts at most every
256 KiB per layer. Pull statuses: Downloading, Verifying, Download complete, Already
exists, Retrying. Push statuses: Pushing, Pushed, Layer already exists, Mounted from <repo>.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import zstandard

from engine.base.arch import host_arch, host_variant, oci_arch
from engine.base.space import free_bytes, is_no_space
from engine.distribution.credentials import Credentials
from engine.distribution.registry import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_TYPES,
    RegistryClient,
    TransferError,
)
from engine.errors import EngineError, InvalidArgument, NoSpace, RegistryError
from engine.images.layers import sniff_compression
from engine.images.reference import Reference, is_image_id, parse
from engine.images.store import Image, ImageStore, parse_manifest

ProgressFn = Callable[[dict], None]
PROGRESS_STEP = 256 << 10  # report byte progress at most every 256 KiB per layer
DOWNLOAD_WORKERS = 3  # docker's default max-concurrent-downloads
UPLOAD_WORKERS = 5  # docker's default max-concurrent-uploads
DOWNLOAD_ATTEMPTS = 3  # a broken connection is retried (from the start of the layer)
RETRY_DELAY = 0.5  # seconds, times the attempt number
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
CONFIG_LIMIT = 16 << 20  # configs are JSON read into memory; real ones are KiBs



# -- platforms -----------------------------------------------------------------

@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64")
        arch = oci_arch(parts[1])
        return cls(parts[0], arch, parts[2] if len(parts) == 3 else None)

    @classmethod
    def host(cls) -> Platform:
        return cls("linux", host_arch(), host_variant())

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def _normal_variant(arch: str, variant: str | None) -> str | None:
    # arm64 without a variant means v8, as in containerd's platform matcher.
    if arch == "arm64" and variant in (None, "", "v8"):
        return "v8"
    return variant or None


def choose_manifest(index: dict, want: Platform) -> dict:
    """The descriptor in an index for ``want``; attestation (unknown/unknown) entries are skipped."""
    candidates = []
    available = []
    for desc in index.get("manifests") or []:
        plat = desc.get("platform") or {}
        os_, arch = plat.get("os", ""), plat.get("architecture", "")
        if (os_, arch) == ("unknown", "unknown") or not os_:
            continue
        variant = plat.get("variant")
        available.append(str(Platform(os_, arch, variant)))
        if os_ != want.os or arch != want.architecture:
            continue
        have = _normal_variant(arch, variant)
        wanted = _normal_variant(arch, want.variant)
        if wanted is None or have == wanted:
            candidates.append(desc)
        elif want.variant is None:
            candidates.append(desc)
    if not candidates:
        raise EngineError(f"no matching manifest for {want} in the manifest list entries "
                          f"(available: {', '.join(available) or 'none'})")
    return candidates[0]


def _kind(data: bytes, content_type: str) -> tuple[str, dict]:
    """("index" | "manifest", parsed JSON); schema1 and non-JSON are refused."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError("the registry returned a manifest that is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError("the registry returned a manifest that is not a JSON object")
    media_type = doc.get("mediaType") or content_type
    if doc.get("schemaVersion") == 1 or media_type in SCHEMA1_TYPES:
        raise RegistryError("this image has a Docker schema 1 manifest, which is deprecated and not "
                            "supported; rebuild and push it with a current client")
    if media_type in INDEX_TYPES or "manifests" in doc:
        return "index", doc
    return "manifest", doc


# -- progress --------------------------------------------------------------------

class _Progress:
    """Calls the user's callback one thread at a time, throttling byte counts per layer."""

    def __init__(self, callback: ProgressFn | None):
        self.callback = callback
        self.lock = threading.Lock()
        self.last: dict[str, int] = {}

    def __call__(self, digest: str, status: str, current: int, total: int) -> None:
        if self.callback is None:
            return
        short = digest.removeprefix("sha256:")[:12]
        with self.lock:
            if status in ("Downloading", "Pushing"):
                if current < total and current - self.last.get(short + status, -PROGRESS_STEP) < PROGRESS_STEP:
                    return
                self.last[short + status] = current
            self.callback({"id": short, "status": status, "current": current, "total": total})


# -- layer hashing -----------------------------------------------------------------

class DiffIdHasher:
    """sha256 of a layer's uncompressed tar, fed with its compressed bytes as they arrive.

    Compression is sniffed from magic bytes, as containerd does: gzip ``1f 8b``,
    zstd ``28 b5 2f fd``, else plain tar.
    """

    def __init__(self):
        self._hash = hashlib.sha256()
        self._head = b""
        self._mode: str | None = None
        self._dec = None

    def update(self, data: bytes) -> None:
        if self._mode is None:
            self._head += data
            if len(self._head) < 4:
                return
            data, self._head = self._head, b""
            self._start(data)
        self._feed(data)

    def _start(self, head: bytes) -> None:
        kind = sniff_compression(head)
        if kind == "gzip":
            self._mode, self._dec = "gzip", zlib.decompressobj(31)
        elif kind == "zstd":
            self._mode = "zstd"
            self._dec = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
        else:
            self._mode = "plain"

    def _feed(self, data: bytes) -> None:
        if self._mode == "plain":
            self._hash.update(data)
        elif self._mode == "zstd":
            self._hash.update(self._dec.decompress(data))
        else:
            while data:
                self._hash.update(self._dec.decompress(data))
                if not self._dec.eof:
                    break
                # A gzip stream may have several members; anything else after the end is ignored.
                data = self._dec.unused_data
                if sniff_compression(data) != "gzip":
                    break
                self._dec = zlib.decompressobj(31)

    def hexdigest(self) -> str:
        if self._mode is None:
            head, self._head = self._head, b""
            self._start(head.ljust(4, b"\0") if head else b"\0\0\0\0")
            self._feed(head)
        return "sha256:" + self._hash.hexdigest()


# -- pull ---------------------------------------------------------------------------

class _Cancelled(Exception):
    pass


def _as_ref(ref: str | Reference) -> Reference:
    return parse(ref) if isinstance(ref, str) else ref


def pull(store: ImageStore, ref: str | Reference, credentials: Credentials | None = None,
         platform: str | Platform | None = None, progress: ProgressFn | None = None,
         insecure: bool | None = None, max_workers: int = DOWNLOAD_WORKERS) -> Image:
    """Pull ``ref`` into ``store`` and return the image. Raises RegistryError / InvalidArgument."""
    ref = _as_ref(ref)
    want = Platform.parse(platform) if isinstance(platform, str) else platform
    client = RegistryClient(ref.registry, credentials, insecure)
    repo = ref.repository
    report = _Progress(progress)

    data, content_type, digest = client.get_manifest(repo, ref.digest or ref.tag or "latest")
    index_data = index_digest = None
    kind, doc = _kind(data, content_type)
    if kind == "index":
        index_data, index_digest = data, digest
        desc = choose_manifest(doc, want or Platform.host())
        data, content_type, digest = client.get_manifest(repo, desc["digest"])
        kind, doc = _kind(data, content_type)
        if kind != "manifest":
            raise RegistryError(f"{ref}: the index entry for {want or Platform.host()} is not an image manifest")
    try:
        manifest = parse_manifest(data, f"manifest {digest} of {ref}")
    except InvalidArgument as exc:
        raise RegistryError(str(exc)) from None
    for desc in [manifest["config"], *manifest["layers"]]:
        if not isinstance(desc["size"], int) or isinstance(desc["size"], bool) or desc["size"] < 0:
            raise RegistryError(f"manifest {digest} of {ref} has a descriptor with an invalid size: {desc!r}")

    content = store.content
    blobs = [manifest["config"], *manifest["layers"], {"digest": digest, "size": len(data)}]
    missing = {d["digest"]: int(d["size"]) for d in blobs if not content.has(d["digest"])}
    root = store.engine_config.root
    needed = sum(missing.values())
    if needed > free_bytes(str(root)):
        raise NoSpace(root, needed)  # before a byte is fetched
    try:
        return _fetch_and_register(store, client, ref, repo, manifest, data, digest, index_data,
                                   index_digest, want, report, max_workers)
    except OSError as exc:
        if not is_no_space(exc):
            raise
        # The disk filled meanwhile: what this pull stored goes (no image uses it).
        store.discard_blobs(missing)
        raise NoSpace(root, needed) from None


def _fetch_and_register(store: ImageStore, client: RegistryClient, ref: Reference, repo: str, manifest: dict,
                        data: bytes, digest: str, index_data, index_digest, want, report, max_workers) -> Image:
    content = store.content
    with content.lease():
        config_desc = manifest["config"]
        config_digest = config_desc["digest"]
        if int(config_desc.get("size") or 0) > CONFIG_LIMIT:
            raise RegistryError(f"{ref}: the image config is {config_desc['size']} bytes, more than the "
                                f"{CONFIG_LIMIT >> 20} MiB Berth accepts")
        if content.has(config_digest):
            config_bytes = content.read(config_digest)
        else:
            config_bytes = client.get_blob(repo, config_digest)
        config = _parse_config(config_bytes, ref)
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(manifest["layers"]):
            raise RegistryError(f"{ref}: the manifest has {len(manifest['layers'])} layers but the config "
                                f"lists {len(diff_ids)} diff_ids")
        if want is not None and index_data is None:
            actual = Platform(config.get("os", ""), config.get("architecture", ""), config.get("variant"))
            if (actual.os, actual.architecture) != (want.os, want.architecture):
                raise EngineError(f"image {ref} was found but does not match the requested platform: "
                                  f"wanted {want}, actual {actual}")

        _fetch_layers(client, repo, manifest["layers"], diff_ids, content, report, max_workers)
        content.put(config_bytes, config_digest)
        content.put(data, digest)
        if index_data is not None:
            content.put(index_data, index_digest)
        return store.register(digest, ref=ref, index_digest=index_digest)


def _parse_config(data: bytes, ref: Reference) -> dict:
    try:
        config = json.loads(data)
        diff_ids = config["rootfs"]["diff_ids"]
        if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"{ref}: the image config has no valid rootfs.diff_ids") from None
    return config


def _fetch_layers(client: RegistryClient, repo: str, layers: list[dict], diff_ids: list[str], content,
                  report: _Progress, max_workers: int) -> None:
    cancel = threading.Event()
    todo = []
    seen = set()
    for desc, diff_id in zip(layers, diff_ids, strict=True):
        if content.has(desc["digest"]):
            report(desc["digest"], "Already exists", desc["size"], desc["size"])
        elif desc["digest"] not in seen:
            seen.add(desc["digest"])
            todo.append((desc, diff_id))
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(todo))),
                            thread_name_prefix="pull") as pool:
        futures = [pool.submit(_fetch_layer, client, repo, desc, diff_id, content, report, cancel)
                   for desc, diff_id in todo]
        errors = []
        for future in futures:
            try:
                future.result()
            except _Cancelled:
                pass
            except BaseException as exc:  # stop the others, report the first failure
                cancel.set()
                errors.append(exc)
    if errors:
        raise errors[0]


def _fetch_layer(client: RegistryClient, repo: str, desc: dict, diff_id: str, content, report: _Progress,
                 cancel: threading.Event) -> None:
    """Download one layer, starting again (like docker) when the connection breaks off."""
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            return _fetch_layer_once(client, repo, desc, diff_id, content, report, cancel)
        except TransferError:
            if attempt == DOWNLOAD_ATTEMPTS or cancel.is_set():
                raise
            report(desc["digest"], "Retrying", 0, int(desc["size"]))
            cancel.wait(RETRY_DELAY * attempt)


def _fetch_layer_once(client: RegistryClient, repo: str, desc: dict, diff_id: str, content,
                      report: _Progress, cancel: threading.Event) -> None:
    digest, size = desc["digest"], int(desc["size"])
    if cancel.is_set():
        raise _Cancelled
    report(digest, "Downloading", 0, size)
    hasher = DiffIdHasher()
    where = f"{client.host}/{repo}"
    with content.ingest(digest, size) as writer:
        done = 0
        try:
            # The content store hashes what it writes: no second sha256 pass here.
            for chunk in client.iter_blob(repo, digest, verify=False):
                if cancel.is_set():
                    raise _Cancelled
                writer.write(chunk)
                hasher.update(chunk)
                done += len(chunk)
                report(digest, "Downloading", done, size)
        except InvalidArgument as exc:  # the store saw more bytes than announced
            raise RegistryError(f"{where} served layer {digest} wrong: {exc}") from None
        if done != size:
            raise RegistryError(f"{where} served {done} bytes for layer {digest}, which is {size} bytes")
        report(digest, "Verifying", size, size)
        client.check_blob(repo, digest, writer.digest_so_far)
        actual = hasher.hexdigest()
        if actual != diff_id:
            raise RegistryError(f"layer {digest} from {where} unpacks to {actual}, but the image config "
                                f"says {diff_id}; refusing it")
        writer.commit()
    report(digest, "Download complete", size, size)


# -- push -----------------------------------------------------------------------------

def push(store: ImageStore, name_or_id: str, target_ref: str | Reference | None = None,
         credentials: Credentials | None = None, progress: ProgressFn | None = None,
         insecure: bool | None = None, max_workers: int = UPLOAD_WORKERS) -> str:
    """Push a local image to ``target_ref`` (default: its own name). Returns the manifest digest."""
    image = store.get(name_or_id)
    if target_ref is None:
        if is_image_id(name_or_id) or name_or_id.startswith("sha256:"):
            raise InvalidArgument("give a repository to push an image named by its id to")
        target_ref = name_or_id
    target = _as_ref(target_ref)
    if target.digest:
        raise InvalidArgument(f"cannot push to a digest reference ({target}); use a tag")
    tag = target.tag or "latest"
    content = store.content
    manifest_bytes = content.read(image.manifest_digest)
    manifest = json.loads(manifest_bytes)
    media_type = manifest.get("mediaType") or (
        OCI_MANIFEST if manifest["config"].get("mediaType") == OCI_CONFIG else DOCKER_MANIFEST)
    client = RegistryClient(target.registry, credentials, insecure)
    report = _Progress(progress)
    sources = _mount_sources(image, target)

    layers = []
    for desc in manifest["layers"]:
        if desc["digest"] not in {d["digest"] for d in layers}:
            layers.append(desc)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(layers) or 1)),
                            thread_name_prefix="push") as pool:
        futures = [pool.submit(_push_blob, client, target.repository, desc, content, sources, report)
                   for desc in layers]
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]
    _push_blob(client, target.repository, manifest["config"], content, sources, None)
    digest = client.put_manifest(target.repository, tag, manifest_bytes, media_type)
    # Remember where the image now lives: later pushes mount from here.
    store.register(image.manifest_digest, ref=Reference(target.registry, target.repository, None, digest),
                   index_digest=None)
    return digest


def _mount_sources(image: Image, target: Reference) -> list[str]:
    """Repositories of the target registry that this image came from or was pushed to."""
    out: list[str] = []
    for name in [*image.repo_digests, *image.repo_tags]:
        try:
            ref = parse(name)
        except InvalidArgument:
            continue
        if ref.registry == target.registry and ref.repository != target.repository and ref.repository not in out:
            out.append(ref.repository)
    return out


def _push_blob(client: RegistryClient, repo: str, desc: dict, content, sources: list[str],
               report: _Progress | None) -> None:
    digest, size = desc["digest"], int(desc["size"])
    say = report or (lambda *a: None)
    if client.blob_size(repo, digest, push=True) is not None:
        say(digest, "Layer already exists", size, size)
        return
    location = None
    for source in sources[:3]:
        if location is not None:
            _cancel_upload(client, location)
        location = client.mount_blob(repo, digest, source)
        if location is None:
            say(digest, f"Mounted from {source}", size, size)
            return
    say(digest, "Pushing", 0, size)
    client.upload_blob(repo, digest, size, lambda: content.open(digest), location=location,
                       progress=lambda done: say(digest, "Pushing", done, size))
    say(digest, "Pushed", size, size)


def _cancel_upload(client: RegistryClient, location: str) -> None:
    try:
        client.session.delete(location, timeout=10)
    except Exception:  # best effort: the registry purges stale uploads itself
        pass


# -- repositories -------------------------------------------------------------------------

def catalog(host: str, credentials: Credentials | None = None, insecure: bool | None = None,
            page_size: int = 100) -> list[str]:
    """Every repository name the registry lists (``/v2/_catalog``, all pages)."""
    return list(RegistryClient(host, credentials, insecure).catalog(page_size))


def list_tags(ref: str | Reference, credentials: Credentials | None = None, insecure: bool | None = None,
              page_size: int | None = None) -> list[str]:
    ref = parse(ref, default_tag=False) if isinstance(ref, str) else ref
    return list(RegistryClient(ref.registry, credentials, insecure).tags(ref.repository, page_size))


def delete_manifest(ref: str | Reference, credentials: Credentials | None = None,
                    insecure: bool | None = None) -> str:
    """Delete a manifest (by digest, or the one a tag points at). Returns the digest deleted."""
    ref = _as_ref(ref)
    client = RegistryClient(ref.registry, credentials, insecure)
    digest = ref.digest
    if not digest:
        found = client.head_manifest(ref.repository, ref.tag or "latest")
        if found is None:
            raise RegistryError(f"manifest unknown: {client.host}/{ref.repository}:{ref.tag} not found")
        digest = found[0]
    client.delete_manifest(ref.repository, digest)
    return digest


__all__ = ["Platform", "choose_manifest", "pull", "push", "catalog", "list_tags", "delete_manifest",
           "DiffIdHasher", "OCI_INDEX", "DOCKER_LIST"]
