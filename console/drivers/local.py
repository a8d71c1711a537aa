"""The embedded engine on this host, called in-process by the Celery worker.

Only the worker creates the engine's state (``prepare``, at its start). Everywhere
else a missing or unreadable root, or a missing state directory, is
``EngineUnreachable``: a web process without the engine's volume must never read
"no containers" where it should read "cannot see the engine".
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from django.conf import settings

from console.drivers.base import EngineDriver, EngineUnreachable
from engine import events
from engine.cli.images import history_rows, inspect_dict
from engine.config import EngineConfig
from engine.containers.manager import Containers
from engine.distribution import transfer as distribution
from engine.engine import Engine
from engine.errors import RegistryError
from engine.images import archive
from engine.images.store import Image, ImageStore
from engine.net.networks import Networks
from engine.system import gc, host
from engine.volumes import Volumes


def image_summary(image: Image) -> dict:
    return {
        "id": image.id,
        "repo_tags": list(image.repo_tags),
        "repo_digests": list(image.repo_digests),
        "size": image.size,
        "created": image.created,
        "platform": image.platform,
        "layer_count": len(image.layers),
        "labels": (image.config.get("config") or {}).get("Labels") or {},
    }




def _unreachable(root: Path, why: str) -> EngineUnreachable:
    return EngineUnreachable(f"the engine at {root} cannot be reached from this process: {why}")


def check_readable_dir(path: Path, root: Path) -> None:
    """EngineUnreachable unless ``path`` is a directory this process can list."""
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except FileNotFoundError:
        what = "it does not exist" if path == root else f"{path.name}/ is missing"
        raise _unreachable(root, what + " (is the engine's volume mounted here?)") from None
    except NotADirectoryError:
        raise _unreachable(root, f"{path} is not a directory") from None
    except OSError as exc:
        raise _unreachable(root, f"{path} cannot be read ({exc.strerror})") from None


def reading(state_dir: str):
    """For a listing the mirror is rebuilt from: its state must be there and readable, and any
    OSError while reading means "unreachable", never "empty"."""
    def wrap(method):
        @functools.wraps(method)
        def read(self, *args, **kwargs):
            config = self.config
            check_readable_dir(config.root / state_dir, config.root)
            try:
                return method(self, *args, **kwargs)
            except OSError as exc:
                raise _unreachable(config.root, f"reading {state_dir} failed ({exc})") from None
        return read
    return wrap


class _Stoppable:
    """A file whose every read and write first asks whether the operation was cancelled."""

    def __init__(self, file, check):
        self._file, self._check = file, check

    def read(self, *args):
        self._check()
        return self._file.read(*args)

    def write(self, data):
        self._check()
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)


class LocalEngineDriver(EngineDriver):
    @property
    def config(self) -> EngineConfig:
        root = Path(settings.ENGINE_ROOT)
        # Checked before any store is opened: opening one would create the root here.
        check_readable_dir(root, root)
        return EngineConfig(root=root, run_root=Path(settings.ENGINE_RUN_ROOT))

    def prepare(self) -> None:
        root = Path(settings.ENGINE_ROOT)
        root.mkdir(parents=True, exist_ok=True)
        engine = Engine(EngineConfig(root=root, run_root=Path(settings.ENGINE_RUN_ROOT)))
        engine.images, engine.containers, engine.volumes, engine.networks  # noqa: B018  (each makes its dirs)

    @property
    def engine(self) -> Engine:
        """The engine's stores, wired as the engine's CLI wires them (settings are read
        on each use: tests change them)."""
        return Engine(self.config)

    @property
    def images(self) -> ImageStore:
        return self.engine.images  # refuses removing images that containers use

    @property
    def containers(self) -> Containers:
        return self.engine.containers

    def facts(self) -> dict:
        return {**host.facts(self.config), "reclaimable_bytes": gc.reclaimable(self.config)}

    def clean_leftovers(self, grace_seconds: float) -> dict:
        # engine/system/gc.py is the one owner of clean-up: partial downloads older than the grace,
        # trash of interrupted removals, unused layers, the events log.
        return gc.collect(self.config, ingest_grace=grace_seconds).as_dict()

    # -- images ---------------------------------------------------------------------
    @reading("images")
    def list_images(self) -> list[dict]:
        # As `docker images`: a build's intermediate steps are not listed.
        return [image_summary(image) for image in self.images.list()]

    def inspect_image(self, name_or_id: str) -> dict:
        image = self.images.get(name_or_id)
        return {**inspect_dict(image), "HistoryRows": history_rows(image)}

    def pull_image(self, reference, credentials=None, platform=None, progress=None, insecure=None) -> dict:
        image = distribution.pull(self.images, reference, credentials=credentials, platform=platform,
                                  progress=progress, insecure=insecure)
        return image_summary(image)

    def push_image(self, name, target=None, credentials=None, progress=None, insecure=None) -> str:
        return distribution.push(self.images, name, target, credentials=credentials, progress=progress,
                                 insecure=insecure)

    def tag_image(self, source, target) -> None:
        self.images.tag(source, target)

    def remove_image(self, name_or_id, force=False) -> list[str]:
        return self.images.remove(name_or_id, force=force)

    def prune_images(self, all=False) -> tuple[list[str], int]:
        return self.images.prune(all=all)

    def save_images(self, names, out) -> None:
        archive.save(self.images, names, _Stoppable(out, self.check_cancelled))

    def load_images(self, tar) -> list[dict]:
        return [image_summary(image) for image in archive.load(self.images, _Stoppable(tar, self.check_cancelled))]

    # -- containers -----------------------------------------------------------------
    @reading("containers")
    def list_containers(self) -> list[dict]:
        """``docker ps -a`` JSON, with the published ports as ``docker ps`` shows them."""
        networks = self.networks
        summaries = self.containers.list(all=True)
        for summary in summaries:
            published = networks.settings(summary["Id"]).get("Ports") or {}
            summary["Ports"] = [
                {"IP": b["HostIp"], "PrivatePort": int(port.split("/")[0]), "PublicPort": int(b["HostPort"]),
                 "Type": port.split("/")[1]}
                for port, bindings in published.items() for b in (bindings or [])
            ]
        return summaries

    def inspect_container(self, ref: str) -> dict:
        return self.containers.inspect(ref)

    def create_container(self, spec: dict) -> dict:
        options = dict(spec)
        image = options.pop("image")
        command = options.pop("command", None)
        container = self.containers.create(image, command, **options)
        return {"id": container.id, "name": container.name}

    def start_container(self, ref: str) -> None:
        self.containers.start(ref)

    def stop_container(self, ref: str, timeout: int | None = None) -> None:
        self.containers.stop(ref, timeout)

    def restart_container(self, ref: str, timeout: int | None = None) -> None:
        self.containers.restart(ref, timeout)

    def kill_container(self, ref: str, signal: str | None = None) -> None:
        self.containers.kill(ref, signal)

    def pause_container(self, ref: str) -> None:
        self.containers.pause(ref)

    def unpause_container(self, ref: str) -> None:
        self.containers.unpause(ref)

    def remove_container(self, ref: str, force: bool = False) -> None:
        self.containers.remove(ref, force=force)

    def rename_container(self, ref: str, new_name: str) -> None:
        self.containers.rename(ref, new_name)

    def container_logs(self, ref: str, tail: int = 200) -> list[dict]:
        return list(self.containers.logs(ref, tail=tail))

    # -- events ---------------------------------------------------------------------
    def follow_events(self, since=None, stop=None):
        return events.follow(self.config, since=since, stop=stop)

    # -- live (websockets) ----------------------------------------------------------
    def log_stream(self, ref: str):
        from engine.logs.stream import LogStream

        return LogStream(self.containers.get(ref).config["LogPath"])

    def container_state(self, ref: str) -> dict:
        state = self.containers.inspect(ref)["State"]
        return {"status": state["Status"], "exit_code": state["ExitCode"], "running": state["Running"]}

    def open_terminal(self, ref, command=None, *, user=None, cols=80, rows=24):
        from engine.containers.terminal import open_session

        return open_session(self.containers, ref, command, user=user, cols=cols, rows=rows)

    def stats_sample(self, ref: str) -> dict:
        from engine.containers import stats

        container = self.containers.get(ref)
        if container.status not in ("running", "paused"):
            from engine.errors import Conflict

            raise Conflict(f"Container {container.name} is not running")
        return stats.sample(container)

    def stats_summary(self, current, previous) -> dict:
        from engine.containers import stats

        return stats.summarize(current, previous)

    # -- volumes --------------------------------------------------------------------
    @property
    def volumes(self) -> Volumes:
        return self.engine.volumes

    @reading("volumes")
    def list_volumes(self, size: bool = False) -> list[dict]:
        return self.volumes.list(size=size)

    def inspect_volume(self, name: str) -> dict:
        return self.volumes.inspect(name, size=True)

    def create_volume(self, name: str, labels: dict | None = None) -> dict:
        return self.volumes.create(name, labels=labels)

    def remove_volume(self, name: str, force: bool = False) -> None:
        self.volumes.remove(name, force=force)

    def prune_volumes(self) -> tuple[list[str], int]:
        return self.volumes.prune()

    # -- networks -------------------------------------------------------------------
    @property
    def networks(self) -> Networks:
        return self.engine.networks

    @reading("networks")
    def list_networks(self) -> list[dict]:
        return self.networks.list()

    def inspect_network(self, ref: str) -> dict:
        return self.networks.inspect(ref)

    def create_network(self, name: str, subnet: str | None = None, gateway: str | None = None,
                       internal: bool = False, labels: dict | None = None) -> dict:
        return self.networks.create(name, subnet=subnet, gateway=gateway, internal=internal, labels=labels)

    def remove_network(self, ref: str) -> None:
        self.networks.remove(ref)

    def prune_networks(self) -> list[str]:
        return self.networks.prune()

    # -- build ----------------------------------------------------------------------
    def build_image(self, context, dockerfile: str = "Dockerfile", tags=(), on_line=None,
                    no_cache: bool = False) -> dict:
        from engine.build import builder as build

        image = build.build(self.config, context, dockerfile, tags=tags, on_line=on_line, no_cache=no_cache,
                            cancelled=self.cancelled, pull=self._pull_base)
        return image_summary(image)

    def _pull_base(self, ref: str):
        """A FROM image that is not here: only from a registry the administrators allow, and
        its failures in one plain message (console.registries.reach)."""
        from console.registries import reach

        host = reach.host_of(ref)
        reach.check_in_task(host)
        try:
            return distribution.pull(self.images, ref, progress=None)
        except RegistryError as exc:
            if getattr(exc, "code", ""):
                raise
            reach.log.warning("build: FROM %s: %s", ref, exc)
            raise RegistryError(f"cannot reach registry {host}") from None
