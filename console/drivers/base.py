"""The interface every engine driver implements.

Methods return plain data (dicts, lists) shaped like Docker's API, so the
console never depends on one engine's classes. Errors are ``engine.errors``
exceptions whose message is shown to the user as is.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import BinaryIO

from engine.errors import EngineError

Progress = Callable[[dict], None]


class EngineUnreachable(EngineError):
    """The engine cannot be read from this process (its root or its state is missing or
    unreadable). Never the same as an empty engine: whoever gets it keeps what it knows."""


class OperationCancelled(Exception):
    """The operation that asked for this work was cancelled; the driver stopped it."""


class EngineDriver(abc.ABC):
    def __init__(self, environment):
        self.environment = environment
        # Set by the operation runner: True once the operation is cancelled. Long work (a
        # build, a save, a load) asks it between steps and chunks and raises OperationCancelled.
        self.cancelled: Callable[[], bool] = lambda: False

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise OperationCancelled("cancelled")

    def prepare(self) -> None:
        """Create the engine's state where this process owns the engine (the worker, at start).
        Nothing else creates it: a process that finds none reports the engine unreachable."""
        return None

    def clean_leftovers(self, grace_seconds: float) -> dict:
        """Give back what interrupted operations left behind (partial downloads...);
        returns what was freed. Nothing to do by default."""
        return {}

    @abc.abstractmethod
    def facts(self) -> dict:
        """What the engine reports about its host: runtime, storage, kernel, cgroups (and,
        where it knows, ``reclaimable_bytes``: what a full system prune would give back)."""

    # -- images ---------------------------------------------------------------------
    @abc.abstractmethod
    def list_images(self) -> list[dict]:
        """Every image: {"id", "repo_tags", "repo_digests", "size", "created", "platform",
        "layer_count", "labels"}."""

    @abc.abstractmethod
    def inspect_image(self, name_or_id: str) -> dict:
        """``docker image inspect`` data plus "History" rows with sizes."""

    @abc.abstractmethod
    def pull_image(self, reference: str, credentials=None, platform: str | None = None,
                   progress: Progress | None = None, insecure: bool | None = None) -> dict:
        """Pull and return the image as in ``list_images``. ``insecure``: plain HTTP allowed
        (None lets the engine decide: loopback registries are)."""

    @abc.abstractmethod
    def push_image(self, name: str, target: str | None = None, credentials=None,
                   progress: Progress | None = None, insecure: bool | None = None) -> str:
        """Push and return the manifest digest."""

    @abc.abstractmethod
    def tag_image(self, source: str, target: str) -> None: ...

    @abc.abstractmethod
    def remove_image(self, name_or_id: str, force: bool = False) -> list[str]: ...

    @abc.abstractmethod
    def prune_images(self, all: bool = False) -> tuple[list[str], int]: ...

    @abc.abstractmethod
    def save_images(self, names: list[str], out: BinaryIO) -> None: ...

    @abc.abstractmethod
    def load_images(self, tar: BinaryIO) -> list[dict]: ...

    # -- containers -----------------------------------------------------------------
    @abc.abstractmethod
    def list_containers(self) -> list[dict]:
        """Every container, as ``docker ps -a`` JSON (Id, Names, Image, ImageID, State...)."""

    @abc.abstractmethod
    def inspect_container(self, ref: str) -> dict: ...

    @abc.abstractmethod
    def create_container(self, spec: dict) -> dict:
        """Create from a spec (image, command, name, entrypoint, env, workdir, user, tty,
        open_stdin, labels, hostname, memory, cpus, pids_limit, read_only, restart, network,
        publish, volumes, security_opt); returns {"id", "name"}."""

    @abc.abstractmethod
    def start_container(self, ref: str) -> None: ...

    @abc.abstractmethod
    def stop_container(self, ref: str, timeout: int | None = None) -> None: ...

    @abc.abstractmethod
    def restart_container(self, ref: str, timeout: int | None = None) -> None: ...

    @abc.abstractmethod
    def kill_container(self, ref: str, signal: str | None = None) -> None: ...

    @abc.abstractmethod
    def pause_container(self, ref: str) -> None: ...

    @abc.abstractmethod
    def unpause_container(self, ref: str) -> None: ...

    @abc.abstractmethod
    def remove_container(self, ref: str, force: bool = False) -> None: ...

    @abc.abstractmethod
    def rename_container(self, ref: str, new_name: str) -> None: ...

    @abc.abstractmethod
    def container_logs(self, ref: str, tail: int = 200) -> list[dict]:
        """The last ``tail`` log records: {"time", "stream", "log"}."""

    # -- events ---------------------------------------------------------------------
    @abc.abstractmethod
    def follow_events(self, since=None, stop=None):
        """Engine events (Docker-shaped dicts: Type, Action, Actor, time), past ones from
        ``since`` then new ones; ends when ``stop()`` returns True."""

    # -- live (websockets) ----------------------------------------------------------
    # Not abstract: a driver without them gives a clear error, and the live pages say so.
    def log_stream(self, ref: str):
        """An ``engine.logs.stream.LogStream``-like reader of the container's log (raw JSON
        lines with cursors: tail, around, search, follower)."""
        raise NotImplementedError("live logs are not available for this environment")

    def container_state(self, ref: str) -> dict:
        """{"status", "exit_code", "running"} of the container, cheap enough to poll."""
        raise NotImplementedError("live logs are not available for this environment")

    def open_terminal(self, ref: str, command: list[str] | None = None, *, user: str | None = None,
                      cols: int = 80, rows: int = 24):
        """A terminal session (``engine.containers.terminal.TerminalSession``-like: ``fd``, ``read``,
        ``write``, ``resize``, ``poll``, ``close``)."""
        raise NotImplementedError("terminals are not available for this environment")

    def stats_sample(self, ref: str) -> dict:
        """One raw resource reading of a running container (``summarize`` two of them)."""
        raise NotImplementedError("stats are not available for this environment")

    def stats_summary(self, current: dict, previous: dict | None) -> dict:
        """``docker stats`` columns from two readings."""
        raise NotImplementedError("stats are not available for this environment")

    # -- volumes and networks -------------------------------------------------------
    @abc.abstractmethod
    def list_volumes(self, size: bool = False) -> list[dict]:
        """``docker volume ls`` JSON plus "Containers": [{"Id", "Name"}] using each; with
        ``size``, "UsageData.Size" in bytes (slow for big volumes)."""

    @abc.abstractmethod
    def inspect_volume(self, name: str) -> dict: ...

    @abc.abstractmethod
    def create_volume(self, name: str, labels: dict | None = None) -> dict: ...

    @abc.abstractmethod
    def remove_volume(self, name: str, force: bool = False) -> None: ...

    @abc.abstractmethod
    def prune_volumes(self) -> tuple[list[str], int]: ...

    @abc.abstractmethod
    def list_networks(self) -> list[dict]:
        """``docker network ls`` JSON with IPAM and Containers; "Builtin" for none/host/bridge."""

    @abc.abstractmethod
    def inspect_network(self, ref: str) -> dict: ...

    @abc.abstractmethod
    def create_network(self, name: str, subnet: str | None = None, gateway: str | None = None,
                       internal: bool = False, labels: dict | None = None) -> dict: ...

    @abc.abstractmethod
    def remove_network(self, ref: str) -> None: ...

    @abc.abstractmethod
    def prune_networks(self) -> list[str]: ...

    # -- build ----------------------------------------------------------------------
    @abc.abstractmethod
    def build_image(self, context, dockerfile: str = "Dockerfile", tags=(), on_line=None,
                    no_cache: bool = False) -> dict:
        """Build from a context directory or tar; ``on_line(text)`` gets the output as it comes."""
