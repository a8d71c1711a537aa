"""The one owner of clean-up: what nothing uses any more is given back.

In the spirit of containerd's garbage collector: the roots are the images (every
registered manifest) and the containers (their snapshots); everything reachable from a
root is marked, the rest of the store is swept:

- unpacked layers (``layers/``) no image names and no snapshot stacks on;
- trash left by removals killed half-way (``snapshots/.trash-*``, ``layers/.trash-*``,
  ``volumes/.trash-*``, ``containers/.removing-*``), of killed unpacks and overlay probes
  (``layers/.tmp-*``, ``.overlay-probe-*``, after ``CREATE_GRACE``), what creates killed half-way left
  (a container directory without its config, past ``CREATE_GRACE``) and snapshots of
  containers that are gone (``build-*`` ones only when older than
  ``BUILD_SNAPSHOT_GRACE``: a build may be using it);
- ingest files (``content/ingest/*.part``) older than ``INGEST_GRACE`` that no writer
  holds (each writer flocks its file);
- blobs no image references (``blobs=True`` only: it waits for running pulls, so the
  boot and ``system prune`` ask for it, not the calls after each removal);
- exec records (``containers/<id>/execs``) past ``EXEC_GRACE``: every exec writes its
  process spec, read once when it starts, and a TTY exec its state;
- the events log: rotated when past its bound, the rotated half dropped when old.

``collect`` runs after removals (rmi, rm, prune), at start (``engine.system.boot``) and on a
schedule (the console's beat through its driver). Only one runs at a time per root
(``root/gc.lock``, not waited for: a collection that finds another running skips).

``disk_usage`` is ``system df`` and ``prune`` is ``system prune``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import events
from engine.base.inroot import tree_size
from engine.config import EngineConfig
from engine.containers.state import read_records
from engine.errors import EngineError
from engine.snapshots.snapshotter import mount_points

INGEST_GRACE = 600.0  # seconds: a writer that has not flocked its file yet is not robbed
BUILD_SNAPSHOT_GRACE = 6 * 3600.0
# A create unpacks the image's layers before it writes anything into the container's
# directory: give the biggest image time to unpack before calling its create dead.
CREATE_GRACE = 3600.0
EXEC_GRACE = 3600.0  # an exec's process spec is read once, when it starts
CONTAINER_KEY = re.compile(r"^[0-9a-f]{64}$")
ACTIVE = ("running", "paused", "restarting")


@dataclass
class Report:
    """What one collection removed (bytes are file contents, as far as known)."""

    layers: list[str] = field(default_factory=list)  # chain ids
    snapshots: list[str] = field(default_factory=list)  # keys of orphan snapshots
    trash: int = 0  # leftover directories of interrupted removals
    ingest: int = 0  # stale ingest files
    blobs: int = 0  # unreferenced blobs
    events_rotated: bool = False
    reclaimed: int = 0
    skipped: bool = False  # another collection was running

    def as_dict(self) -> dict:
        return {"layers": self.layers, "snapshots": self.snapshots, "trash": self.trash,
                "ingest": self.ingest, "blobs": self.blobs, "events_rotated": self.events_rotated,
                "reclaimed": self.reclaimed, "skipped": self.skipped}


@contextlib.contextmanager
def _try_lock(path: Path):
    """Yields True with the lock held, False if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _stores(config: EngineConfig):
    from engine.images.content import ContentStore
    from engine.images.layers import LayerStore
    from engine.images.store import ImageStore
    from engine.snapshots.snapshotter import Snapshotter

    content = ContentStore(config)
    # The collector never prepares a snapshot (each keeps the driver it was made with), so
    # it needs no driver probe, which mounts a test overlay.
    return ImageStore(config, content), LayerStore(config, content), Snapshotter(config, driver="copy")





def _remove_tree(path: Path) -> int:
    size = tree_size(path)
    shutil.rmtree(path, ignore_errors=True)
    return size


# ---------------------------------------------------------------- mark

def marked_layers(images, layers, snapshots) -> set[str]:
    """Chain ids of the unpacked layers a root still needs: those of every registered
    image (intermediate ones included) and those every snapshot stacks on."""
    keep: set[str] = set()
    for image in images.list(all=True):
        keep.update(image.chain_ids)
    stacked = set()
    for key in snapshots.list():
        with contextlib.suppress(EngineError, OSError, ValueError, KeyError):
            stacked.update(Path(p).name for p in snapshots.lowers(key))
    if stacked:
        from engine.images.layers import short_key

        keep.update(c for c in layers.chain_ids() if short_key(c) in stacked)
    return keep


def orphan_snapshots(config: EngineConfig, snapshots, now: float | None = None) -> list[str]:
    """Snapshots whose container is gone (and build ones past their grace)."""
    now = time.time() if now is None else now
    containers = config.root / "containers"
    out = []
    for key in snapshots.list():
        if CONTAINER_KEY.match(key):
            if not (containers / key).is_dir():
                out.append(key)
        elif key.startswith("build-"):
            with contextlib.suppress(OSError):
                if now - (snapshots.dir / key / "snapshot.json").stat().st_mtime > BUILD_SNAPSHOT_GRACE:
                    out.append(key)
    return out


def killed_creates(config: EngineConfig, now: float | None = None) -> list[Path]:
    """Container directories without their config, older than ``CREATE_GRACE``: a create
    killed half-way (the config is written last; younger ones may still be created)."""
    now = time.time() if now is None else now
    root = config.root / "containers"
    out = []
    for cdir in root.iterdir() if root.is_dir() else []:
        if CONTAINER_KEY.match(cdir.name) and not (cdir / "config.json").exists():
            with contextlib.suppress(OSError):
                snapshot = config.root / "snapshots" / cdir.name
                last = max(cdir.stat().st_mtime, snapshot.stat().st_mtime if snapshot.exists() else 0)
                if now - last > CREATE_GRACE:
                    out.append(cdir)
    return out


def _remove_killed_create(config: EngineConfig, snapshots, cdir: Path) -> int:
    """What a killed create made: its snapshot, address, name and directory."""
    freed = 0
    with contextlib.suppress(EngineError, OSError):
        if (snapshots.dir / cdir.name).exists():
            freed += tree_size(snapshots.dir / cdir.name / "upper")
            snapshots.remove(cdir.name)
    if (config.root / "networks").is_dir():
        from engine.net.networks import Networks

        with contextlib.suppress(EngineError, OSError):
            Networks(config).on_remove(cdir.name)
    names = config.root / "containers" / "names"
    for link in names.iterdir() if names.is_dir() else []:
        with contextlib.suppress(OSError):
            if os.readlink(link) == cdir.name:
                link.unlink()
    return freed + _remove_tree(cdir)


# ---------------------------------------------------------------- sweep

def collect(config: EngineConfig, *, blobs: bool = False, ingest_grace: float = INGEST_GRACE) -> Report:
    """Mark and sweep the store of ``config``; what was removed."""
    report = Report()
    if not config.root.is_dir():
        return report
    with _try_lock(config.root / "gc.lock") as held:
        if not held:
            report.skipped = True
            return report
        images, layers, snapshots = _stores(config)
        from engine.base.files import lock

        # Snapshots first: the layers only they stacked on go in the same collection.
        for cdir in killed_creates(config):
            report.reclaimed += _remove_killed_create(config, snapshots, cdir)
            report.trash += 1
        for key in orphan_snapshots(config, snapshots):
            with contextlib.suppress(EngineError, OSError):
                report.reclaimed += tree_size(snapshots.dir / key / "upper")
                snapshots.remove(key)
                report.snapshots.append(key)
        # Under the images' lock no image appears or goes while layers are marked and swept.
        with lock(images._lock_path, exclusive=True):
            keep = marked_layers(images, layers, snapshots)
            sizes = {c: layers.size(c) for c in layers.chain_ids()}
            removed = layers.remove_unused(keep)
        report.layers = sorted(removed)
        report.reclaimed += sum(sizes.get(c, 0) for c in removed)
        report.trash += snapshots.clean_leftovers()
        for pattern, where in ((".removing-*", config.root / "containers"),
                               (".trash-*", config.root / "volumes"),
                               (".trash-*", config.root / "layers")):
            for trash in where.glob(pattern) if where.is_dir() else []:
                report.reclaimed += _remove_tree(trash)
                report.trash += 1
        # Killed unpacks and overlay probes: by age (an unpack holds its layer's lock for as
        # long as it takes; a probe lasts a moment), never through a mount.
        mounted = set(mount_points())
        for pattern, where in ((".tmp-*", config.root / "layers"), (".overlay-probe-*", config.root),
                               (".overlay-probe-*", config.root / "snapshots")):
            for leftover in where.glob(pattern) if where.is_dir() else []:
                with contextlib.suppress(OSError):
                    if time.time() - leftover.stat().st_mtime > CREATE_GRACE and \
                            not any(m.startswith(str(leftover) + "/") for m in mounted):
                        report.reclaimed += _remove_tree(leftover)
                        report.trash += 1
        report.reclaimed += clean_execs(config)
        freed, count = clean_ingest(images.content.ingest_dir, ingest_grace)
        report.ingest, report.reclaimed = count, report.reclaimed + freed
        if blobs:
            before = sum(1 for _ in images.content.digests())
            report.reclaimed += images.discard_blobs(set(images.content.digests()))
            report.blobs = before - sum(1 for _ in images.content.digests())
        report.events_rotated = events.rotate(config)
        report.reclaimed += events.drop_old(config)
    return report


def clean_ingest(ingest_dir: Path, grace: float) -> tuple[int, int]:
    """Delete ingest files older than ``grace`` seconds that no writer holds: (bytes, count)."""
    freed = count = 0
    now = time.time()
    for entry in os.scandir(ingest_dir) if ingest_dir.is_dir() else []:
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if now - st.st_mtime < grace:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                freed += st.st_size
                count += 1
        finally:
            os.close(fd)
    return freed, count


_local = threading.local()


@contextlib.contextmanager
def deferred():
    """Removals inside the block leave the collection to whoever opened it (one for a
    whole prune instead of one per container or image)."""
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth = depth


def clean_execs(config: EngineConfig, grace: float = EXEC_GRACE) -> int:
    """Exec records past ``grace``: process specs (read once, when the exec starts) and
    the state of execs that ended. Bytes freed."""
    freed = 0
    now = time.time()
    root = config.root / "containers"
    for execs in root.glob("*/execs") if root.is_dir() else []:
        for path in execs.glob("*.json"):
            try:
                st = path.stat()
                if now - st.st_mtime < grace:
                    continue
                if path.name.endswith(".state.json") and json.loads(path.read_text()).get("Running"):
                    continue
                path.unlink()
                freed += st.st_size
            except (OSError, ValueError):
                continue
    return freed


def after_removal(config: EngineConfig) -> Report | None:
    """Called once something was removed (rmi, rm, prune): never fails the removal."""
    if getattr(_local, "depth", 0):
        return None
    try:
        return collect(config)
    except (EngineError, OSError):
        return None


# ---------------------------------------------------------------- system df and prune

@dataclass
class Usage:
    kind: str
    total: int
    active: int
    size: int
    reclaimable: int

    def as_dict(self) -> dict:
        return {"Type": self.kind, "TotalCount": self.total, "Active": self.active,
                "Size": self.size, "Reclaimable": self.reclaimable}

def disk_usage(config: EngineConfig) -> list[Usage]:
    """``docker system df``: Images, Containers, Local Volumes, Build Cache.

    Images' size is what they hold on disk once (blobs and unpacked layers, shared ones
    counted once, plus unpacked layers nothing uses); reclaimable is what removing every
    image no container uses would free. The build cache is the intermediate images of
    builds (what only they hold)."""
    images, layers, snapshots = _stores(config)
    containers = list(read_records(config.root / "containers").values())
    used_ids = {c.get("Image") for c, _ in containers}
    every = images.list(all=True)
    listed = {image.id for image in images.list()}
    blob_size: dict[str, int] = {}
    for image in every:
        for digest in image.blobs():
            if digest not in blob_size:
                with contextlib.suppress(EngineError):
                    blob_size[digest] = images.content.size(digest)
    layer_size = {c: layers.size(c) for c in layers.chain_ids()}

    def held(group) -> tuple[set[str], set[str]]:
        blobs, chains = set(), set()
        for image in group:
            blobs |= set(image.blobs())
            chains |= set(image.chain_ids)
        return blobs, chains

    def size_of(blobs, chains) -> int:
        return sum(blob_size.get(d, 0) for d in blobs) + sum(layer_size.get(c, 0) for c in chains)

    top = [i for i in every if i.id in listed]
    cache = [i for i in every if i.id not in listed]
    top_blobs, top_chains = held(top)
    cache_blobs, cache_chains = held(cache)
    only_cache = (cache_blobs - top_blobs, cache_chains - top_chains)
    active_top = [i for i in top if i.id in used_ids]
    active_blobs, active_chains = held([i for i in every if i.id in used_ids])
    unused_layers = set(layer_size) - top_chains - cache_chains
    images_size = size_of(top_blobs, top_chains | unused_layers)
    rows = [Usage("Images", len(top), len(active_top), images_size,
                  max(0, images_size - size_of(active_blobs & top_blobs, active_chains & top_chains)))]

    sizes = []
    for cconfig, state in containers:
        try:
            size = snapshots.usage(cconfig["Id"])
        except (EngineError, OSError, KeyError):
            size = 0
        sizes.append((state.get("Status") in ACTIVE, size))
    rows.append(Usage("Containers", len(sizes), sum(1 for a, _ in sizes if a), sum(s for _, s in sizes),
                      sum(s for a, s in sizes if not a)))

    from engine.volumes import Volumes

    vols = Volumes(config).list(size=True)
    vol_sizes = [(bool(v["Containers"]), max(0, v["UsageData"]["Size"])) for v in vols]
    rows.append(Usage("Local Volumes", len(vols), sum(1 for a, _ in vol_sizes if a),
                      sum(s for _, s in vol_sizes), sum(s for a, s in vol_sizes if not a)))
    cache_size = size_of(*only_cache)
    rows.append(Usage("Build Cache", len(cache), 0, cache_size, cache_size))
    return rows


def reclaimable(config: EngineConfig) -> int:
    """Bytes ``system prune -a --volumes`` would give back (for the dashboard)."""
    return sum(row.reclaimable for row in disk_usage(config))


@dataclass
class PruneResult:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    reclaimed: int = 0


def prune(config: EngineConfig, *, all: bool = False, volumes: bool = False) -> PruneResult:
    """``docker system prune``: stopped containers, unused networks, dangling images (every
    unused one with ``all``), unused volumes with ``volumes``; then a full collection."""
    from engine.engine import Engine

    result = PruneResult()
    images, _, snapshots = _stores(config)
    engine = Engine(config, images=images)
    containers = engine.containers
    with deferred():
        for row in containers.list(all=True):
            if row["State"] in ACTIVE:
                continue
            with contextlib.suppress(EngineError):
                size = 0
                with contextlib.suppress(EngineError, OSError):
                    size = snapshots.usage(row["Id"])
                containers.remove(row["Id"])
                result.containers.append(row["Id"])
                result.reclaimed += size
        result.networks = engine.networks.prune()
        if volumes:
            result.volumes, freed = engine.volumes.prune()
            result.reclaimed += freed
        ids, freed = images.prune(all=all)
        result.images, result.reclaimed = ids, result.reclaimed + freed
    result.reclaimed += collect(config, blobs=True).reclaimed
    return result
