"""Containers: create from an image, the lifecycle, state, inspect, ps, top, wait, rename.

Layout:
- ``root/containers/<id>/``: ``config.json`` (what the user asked for, Docker-shaped),
  ``state.json`` (written by us and by the monitor, atomically, under ``lock``),
  ``bundle/config.json`` (the OCI spec), ``json.log``, ``execs/``;
  ``op.lock`` serialises operations (start, stop, rm...) on one container.
- ``root/containers/names/<name>``: a symlink to the id. Creating the link is the
  atomic "is this name free" test, so names are unique without a global lock.
- ``run_root/c/<short id>/``: the attach socket (short path: unix sockets are limited
  to 108 bytes).

Creating goes image -> layers -> snapshot (rootfs) -> bundle config.json; starting
spawns the monitor (``engine.supervisor.monitor``), which survives us. Reading a container
checks the truth: a dead monitor is noticed and reported, never hidden.

API (``Containers(config)``): create, start, run, stop, restart, kill, pause, unpause,
remove, rename, wait, get, inspect, list (Docker's ps filters), top, logs, logs_async,
attach, restore, in_use. Beside it in this package: what a user types, checked
(``inputs``), creating one from those options (``create``), its ``ps`` row and ``inspect``
document (``inspect``), the attach client (``attach``), ``state.json`` (``state``), exec,
the terminal and stats; events are ``engine.events``.
"""

from __future__ import annotations

import ctypes  # noqa: F401  (loaded once here for the monitor's prctl, not in every fork)
import json
import marshal
import os
import re
import secrets
import select
import shutil
import signal as signal_module
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from engine import events
from engine.base.clock import now_rfc3339
from engine.base.files import lock, write_atomic, write_json_atomic
from engine.base.labels import labels_match
from engine.base.proc import process_start_time
from engine.base.space import RESERVE_SLICE, ensure_reserve, free_bytes, is_no_space, with_reserve
from engine.config import EngineConfig
from engine.containers.attach import AttachConnection, read_frame
from engine.containers.create import create_container
from engine.containers.inputs import NAME_MAX, NAME_RE, check_name, parse_signal
from engine.containers.inspect import inspect as inspect_document
from engine.containers.inspect import summary as summary_row
from engine.containers.state import UNSUPERVISED_ERROR, ZERO_TIME, update_state
from engine.engine import Engine
from engine.errors import Conflict, EngineError, InvalidArgument, NotFound, RuntimeFailure
from engine.runtime.runc import Runtime, cgroup_dir
from engine.supervisor.launcher import start_monitor
from engine.supervisor.monitor import F_EXIT

LOG_MAX_SIZE = 20 * 1024 * 1024
LOG_MAX_FILES = 2
# The monitor runs in a fresh interpreter without site (-I -S: ~8 ms), importing
# engine.supervisor.monitor, so that its compiled bytecode is reused.
REPO_DIR = Path(__file__).resolve().parents[2]
ACTIVE = ("running", "paused", "restarting")
DEAD_MONITOR_ERROR = "monitor died: exit code unknown"
UNSUPERVISED_MARKER = "unsupervised"  # in the run directory (engine.net.keeper writes it too)


def _random_name() -> str:
    adjectives = ["brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
                  "merry", "nimble", "proud", "quiet", "sharp", "tender", "vivid", "witty", "zealous"]
    nouns = ["albatross", "beacon", "compass", "dinghy", "estuary", "frigate", "galley", "harbor",
             "island", "jetty", "keel", "lagoon", "mooring", "narwhal", "orca", "pier", "quay", "reef"]
    return f"{secrets.choice(adjectives)}_{secrets.choice(nouns)}"


# ---------------------------------------------------------------- the store

@dataclass
class Container:
    id: str
    dir: Path
    config: dict
    state: dict
    # Why its config.json or state.json cannot be read ("" when both can): such a container
    # is listed as dead and can only be removed with force (see ``Containers._load_listed``).
    unreadable: str = ""

    @property
    def name(self) -> str:
        return self.config["Name"].lstrip("/")

    @property
    def status(self) -> str:
        return self.state.get("Status", "created")


class Containers:
    """The containers of one engine root. Other stores are given or made from ``config``."""

    def __init__(self, config: EngineConfig, *, engine: Engine | None = None):
        """``engine``: the one whose stores these containers use (a new one by default)."""
        self.config = config
        self.root = config.subdir("containers")
        self.names = self.root / "names"
        self.names.mkdir(exist_ok=True)
        if engine is None:
            engine = Engine(config)
            engine.__dict__["containers"] = self  # its containers are these
        self.engine = engine
        self._runtime: Runtime | None = None

    # The engine makes each store on first use: `ps` or `logs` need none of them.
    @property
    def images(self):
        return self.engine.images

    @property
    def layers(self):
        return self.engine.layers

    @property
    def snapshots(self):
        return self.engine.snapshots

    @property
    def networks(self):
        return self.engine.networks

    @property
    def volumes(self):
        return self.engine.volumes

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime(self.config)
        return self._runtime

    def run_dir(self, container_id: str) -> Path:
        return self.config.run_root / "c" / container_id[:12]

    # ------------------------------------------------------------ lookup
    def ids(self) -> list[str]:
        return [p.name for p in self.root.iterdir() if p.is_dir() and p.name != "names"
                and (p / "config.json").exists()]

    def resolve(self, ref: str) -> str:
        """A full id, a name (with or without '/') or a unique id prefix."""
        ref = (ref or "").strip().lstrip("/")
        if not ref:
            raise InvalidArgument("no container given")
        if NAME_RE.match(ref) and len(ref) <= NAME_MAX:
            link = self.names / ref
            if link.is_symlink():
                target = os.readlink(link)
                if (self.root / target / "config.json").exists():
                    return target
        if re.fullmatch(r"[0-9a-f]{1,64}", ref):
            if (self.root / ref / "config.json").exists():
                return ref
            matches = [i for i in self.ids() if i.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument(f"multiple containers match the prefix {ref!r}; give more of the id")
        raise NotFound(f"No such container: {ref}")

    def get(self, ref: str) -> Container:
        container_id = self.resolve(ref)
        return self._load(container_id)

    def _load(self, container_id: str, reconcile: bool = True) -> Container:
        container = self._load_listed(container_id, reconcile)
        if container.unreadable:
            raise RuntimeFailure(f"container {container.name}: {container.unreadable}; "
                                 "only removing it (rm -f) is possible")
        return container

    def _load_listed(self, container_id: str, reconcile: bool = True) -> Container:
        """The container, or, when its records cannot be read, a dead one that says so: as
        Docker lists a container it cannot load. Never skipped: a listing without it would
        tell its reader (the console's reconcile) that it is gone."""
        directory = self.root / container_id
        records = {}
        for record in ("config.json", "state.json"):
            try:
                records[record] = json.loads((directory / record).read_text())
                if not isinstance(records[record], dict):
                    raise ValueError("not an object")
            except FileNotFoundError:
                raise NotFound(f"No such container: {container_id}") from None
            except (OSError, ValueError) as exc:
                return self._unreadable(container_id, records.get("config.json"),
                                        f"its record {record} is unreadable ({exc})")
        container = Container(container_id, directory, records["config.json"], records["state.json"])
        if reconcile:
            self._reconcile(container)
        return container

    def _unreadable(self, container_id: str, config: dict | None, why: str) -> Container:
        directory = self.root / container_id
        if config is None:
            name = next((link.name for link in self.names.iterdir() if link.is_symlink()
                         and os.readlink(link) == container_id), container_id[:12])
            try:
                created = (directory / "config.json").stat().st_mtime_ns
            except OSError:
                created = 0
            config = {"Name": "/" + name, "Created": now_rfc3339(created)}
        config = {"Path": "", "Args": [], "Image": "", "HostConfig": {}, **config}
        config["Config"] = {"Image": "", **(config.get("Config") or {})}
        return Container(container_id, directory, config, {"Status": "dead", "Error": why},
                         unreadable=why)

    # ------------------------------------------------------------ finding the truth
    def monitor_alive(self, container: Container) -> bool:
        pid, start = container.state.get("MonitorPid"), container.state.get("MonitorStart")
        return bool(pid) and process_start_time(pid) == start

    def _reconcile(self, container: Container) -> None:
        """A container we think is active but whose monitor is gone: say what really happened.
        In memory only: reading writes nothing (it must work on a full disk); ``start`` and
        ``remove`` clean what such a container left in the runtime."""
        if container.status in ("running", "paused") and self.monitor_alive(container):
            pid = container.state.get("Pid")
            if pid and process_start_time(pid) is None:  # done, but not recorded (a full disk)
                held = self._exit_held_by_monitor(container)
                if held is not None:
                    container.state = dict(container.state, Status="exited", Pid=0, Paused=False,
                                           ExitCode=int(held.get("ExitCode") or 0),
                                           OOMKilled=bool(held.get("OOMKilled")),
                                           FinishedAt=held.get("FinishedAt") or ZERO_TIME)
            return
        if container.status not in ACTIVE or self.monitor_alive(container):
            return
        try:  # again: the monitor may have written its last word just before it exited
            state = json.loads((container.dir / "state.json").read_text())
        except (OSError, ValueError):
            state = dict(container.state)
        container.state = state
        if state.get("Status") not in ACTIVE:
            return
        state = dict(state)
        pid = state.get("Pid") or 0
        if pid and process_start_time(pid) is not None and self._runtime_alive(container.id):
            # Still running, but nobody logs its output or will record its exit.
            state["Error"] = UNSUPERVISED_ERROR
            container.state = state
            self._note_unsupervised(container)
            return
        # When it ended is unknown: the monitor's last word is the best guess.
        finished = (container.dir / "state.json").stat().st_mtime_ns
        state.update(Status="exited", Pid=0, ExitCode=255, Paused=False, FinishedAt=now_rfc3339(finished),
                     Error=DEAD_MONITOR_ERROR)
        container.state = state

    def settle(self, container_id: str) -> Container:
        """Write down what reading found only in memory (a container whose monitor and
        process are gone is exited), and delete its runtime record: for boot and for the
        actions that end a run (stop), never for reads. Best effort on a full disk."""
        container = self._load(container_id)
        if container.status in ACTIVE or container.state.get("Error") != DEAD_MONITOR_ERROR:
            return container
        try:
            recorded = json.loads((container.dir / "state.json").read_text()).get("Status")
        except (OSError, ValueError):
            return container
        if recorded in ACTIVE:
            self.runtime.delete(container.id, force=True)
            self._try_update(container, **{key: container.state[key] for key in
                                           ("Status", "Pid", "ExitCode", "Paused", "FinishedAt", "Error")})
            events.emit(self.config, "container", "die", container.id,
                        {"name": container.name, "exitCode": "255"})
        return container

    def unsupervised(self, container: Container) -> bool:
        """Running (or paused) with its monitor gone: no log, no exit code, no restart
        policy; ``restart`` gives it a monitor again."""
        return container.status in ("running", "paused") and not self.monitor_alive(container)

    def _note_unsupervised(self, container: Container) -> None:
        """One ``unsupervised`` event per run, from whoever notices first (this or the
        container's keeper): the marker in the run directory says it was sent."""
        try:
            fd = os.open(self.run_dir(container.id) / UNSUPERVISED_MARKER,
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        os.close(fd)
        try:
            events.emit(self.config, "container", "unsupervised", container.id,
                        {"name": container.name, "pid": str(container.state.get("Pid", 0))})
        except OSError:
            pass

    def _disk_full(self) -> bool:
        return free_bytes(str(self.config.root)) < RESERVE_SLICE

    def _exit_held_by_monitor(self, container: Container) -> dict | None:
        """The exit a live monitor holds for a container that is done ({"ExitCode", "OOMKilled"}),
        or None: it tells whoever attaches once the run is over."""
        sock = self._connect(container)
        if sock is None:
            return None
        try:
            sock.settimeout(0.5)
            sock.sendall(b'{"session": "container", "stdin": false}\n')
            while True:
                kind, payload = read_frame(sock)
                if kind is None:
                    return None
                if kind == F_EXIT:
                    result = json.loads(payload or b"{}")
                    return None if "error" in result else result
        except (OSError, ValueError):
            return None
        finally:
            sock.close()

    def _runtime_alive(self, container_id: str) -> bool:
        state = self.runtime.state(container_id)
        return bool(state) and state.get("status") in ("running", "paused", "created")

    # ------------------------------------------------------------ create
    def create(self, image: str, command: list[str] | None = None, **options) -> Container:
        """``docker create``: the options and what they mean are ``engine.containers.create``'s."""
        return create_container(self, image, command, **options)

    def _reserve_name(self, name: str | None, container_id: str) -> str:
        for _ in range(20 if name is None else 1):
            candidate = name or _random_name()
            try:
                os.symlink(container_id, self.names / candidate)
                return candidate
            except FileExistsError:
                target = os.readlink(self.names / candidate)
                if not (self.root / target).exists():
                    # A stale link left by a crash: take it over.
                    os.unlink(self.names / candidate)
                    os.symlink(container_id, self.names / candidate)
                    return candidate
                if name is not None:
                    raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                                   f'container "{target}". You have to remove (or rename) that '
                                   "container to be able to reuse that name.") from None
        raise Conflict("could not find a free random name")

    def _release_name(self, name: str, container_id: str) -> None:
        link = self.names / name
        try:
            if os.readlink(link) == container_id:
                os.unlink(link)
        except OSError:
            pass

    def _remove_snapshot(self, container_id: str) -> None:
        try:
            self.snapshots.remove(container_id)
        except EngineError:
            pass

    # ------------------------------------------------------------ start
    def start(self, ref: str, *, waiter: bool = False) -> Container:
        """Start the container's monitor, which runs it. ``waiter``: the caller will remove it
        itself when it exits (``run --rm`` in the foreground)."""
        container = self.get(ref)
        with lock(str(container.dir / "op.lock")):
            container = self._load(container.id)
            if container.status in ("running", "restarting"):
                return container  # Docker: starting a running container is a no-op
            if container.status == "paused":
                raise Conflict(f"cannot start a paused container {container.name}, try unpause instead")
            if container.status == "dead":
                raise Conflict(f"container {container.name} is marked for removal and cannot be started")
            if not self.snapshots.is_mounted(container.id):
                self.snapshots.mount(container.id)
            run_dir = self.run_dir(container.id)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / UNSUPERVISED_MARKER).unlink(missing_ok=True)  # a new run, a new monitor
            if (self.runtime.root / container.id).exists():  # left by a crash
                self.runtime.delete(container.id, force=True)
            ensure_reserve(str(self.config.root))  # room for its exit code should the disk fill
            update_state(str(container.dir), StoppedByUser=False, Error="")
            spec = self._monitor_spec(container, run_dir, waiter)
            spec_path = container.dir / "monitor.spec"
            write_atomic(spec_path, marshal.dumps(spec), fsync=False, mode=0o600)
            net = self.networks.start(container.id)
            try:
                reply = start_monitor(self.config.run_root, spec, spec_path, container.dir / "monitor.err")
            except BaseException:
                if net is not None:
                    net.abort()
                raise
            if reply[0] == "error":
                if net is not None:
                    net.abort()
                raise RuntimeFailure(f"failed to start container {container.name}: {reply[1]}")
            self._record_started(container, reply)
            if net is not None:  # its keeper releases the network when the monitor exits
                net.started(int(reply[2]), int(reply[3]))
        return self._load(container.id, reconcile=False)

    def _record_started(self, container: Container, reply: list[str]) -> None:
        """Write "running" as soon as the monitor answers (it writes the same itself a moment
        later), unless the monitor has already recorded the end of this very run."""
        _, pid, monitor_pid, monitor_start, started_at = reply
        with lock(str(container.dir / "lock")):
            path = container.dir / "state.json"
            state = json.loads(path.read_text())
            if state.get("StartedAt") == started_at and state.get("FinishedAt", "") >= started_at:
                return
            state.update(Status="running", Pid=int(pid), StartedAt=started_at, FinishedAt=ZERO_TIME,
                         Error="", ExitCode=0, OOMKilled=False, Paused=False,
                         MonitorPid=int(monitor_pid), MonitorStart=int(monitor_start))
            try:  # the container may be filling the disk already: its monitor writes this too
                with_reserve(str(self.config.root), lambda: write_json_atomic(str(path), state, fsync=False, mode=0o600))
            except OSError as exc:
                if not is_no_space(exc):
                    raise

    def _monitor_spec(self, container: Container, run_dir: Path, waiter: bool) -> dict:
        host = container.config["HostConfig"]
        me = os.getpid()
        return {
            "id": container.id,
            "dir": str(container.dir),
            "run_dir": str(run_dir),
            "bundle": str(container.dir / "bundle"),
            "runtime": self.runtime.path,
            "runtime_root": str(self.runtime.root),
            "log_path": container.config["LogPath"],
            "log_max_size": LOG_MAX_SIZE,
            "log_max_files": LOG_MAX_FILES,
            "attach_socket": str(run_dir / "attach.sock"),
            "tty": bool(container.config["Config"]["Tty"]),
            "open_stdin": bool(container.config["Config"]["OpenStdin"]),
            "restart": host["RestartPolicy"],
            "events_path": str(events.log_path(self.config)),
            "memory_cgroup": str(cgroup_dir("memory", container.id)),
            "auto_remove": bool(host.get("AutoRemove")),
            "waiter": [me, process_start_time(me)] if waiter else None,
            "cleanup": [sys.executable, "-m", "engine", "--root", str(self.config.root),
                        "--run-root", str(self.config.run_root), "rm", "-f", container.id],
            # run here and now, starting no command server for one rm
            "cleanup_env": {"PYTHONPATH": str(REPO_DIR), "BERTH_ENGINE_CLI_SERVER": "0"},
        }

    # ------------------------------------------------------------ stop, kill, pause
    def stop(self, ref: str, timeout: int | None = None) -> Container:
        container = self.get(ref)
        with lock(str(container.dir / "op.lock")):
            return self._stop(self._load(container.id), timeout)

    def _stop(self, container: Container, timeout: int | None) -> Container:
        if container.status not in ACTIVE:
            return container
        self._mark_stopped(container)
        if container.status == "restarting":
            self._wait_monitor_gone(container, 10)
            return self._load(container.id)
        if container.status == "paused":
            self.runtime.resume(container.id)
            self._try_update(container, Paused=False, Status="running")
        timeout = 10 if timeout is None else int(timeout)
        stop_signal = parse_signal(container.config["Config"].get("StopSignal"), signal_module.SIGTERM)
        try:
            self.runtime.kill(container.id, stop_signal)
            events.emit(self.config, "container", "kill", container.id,
                        {"name": container.name, "signal": str(stop_signal)})
        except EngineError:
            pass
        if not self._wait_exit(container, timeout):
            try:
                self.runtime.kill(container.id, signal_module.SIGKILL, all_processes=True)
                events.emit(self.config, "container", "kill", container.id,
                            {"name": container.name, "signal": str(int(signal_module.SIGKILL))})
            except EngineError:
                pass
            self._wait_exit(container, 30)
        # (on a full disk it may stay to write the exit code: it tells readers meanwhile)
        self._wait_monitor_gone(container, 2 if self._disk_full() else 10)
        self.networks.stopped(container.id)
        events.emit(self.config, "container", "stop", container.id, {"name": container.name})
        return self.settle(container.id)  # an unsupervised one had no monitor to record its end

    def restart(self, ref: str, timeout: int | None = None) -> Container:
        container = self.stop(ref, timeout)
        container = self.start(container.id)
        events.emit(self.config, "container", "restart", container.id, {"name": container.name})
        return container

    def kill(self, ref: str, sig: str | int | None = None) -> Container:
        number = parse_signal(sig)
        container = self.get(ref)
        if container.status == "paused":
            raise Conflict(f"Cannot kill container {container.name}: it is paused. "
                           "Unpause the container before stopping or killing")
        if container.status != "running":
            raise Conflict(f"Cannot kill container {container.name}: container is not running")
        self.runtime.kill(container.id, number, all_processes=number == signal_module.SIGKILL)
        events.emit(self.config, "container", "kill", container.id,
                    {"name": container.name, "signal": str(number)})
        return container

    def pause(self, ref: str) -> Container:
        container = self.get(ref)
        with lock(str(container.dir / "op.lock")):
            container = self._load(container.id)
            if container.status != "running":
                raise Conflict(f"Container {container.name} is not running")
            self.runtime.pause(container.id)
            self._record_or_undo(container, lambda: self.runtime.resume(container.id), Status="paused", Paused=True)
        events.emit(self.config, "container", "pause", container.id, {"name": container.name})
        return self._load(container.id)

    def unpause(self, ref: str) -> Container:
        container = self.get(ref)
        with lock(str(container.dir / "op.lock")):
            container = self._load(container.id)
            if container.status != "paused":
                raise Conflict(f"Container {container.name} is not paused")
            self.runtime.resume(container.id)
            self._record_or_undo(container, lambda: self.runtime.pause(container.id), Status="running", Paused=False)
        events.emit(self.config, "container", "unpause", container.id, {"name": container.name})
        return self._load(container.id)

    # ------------------------------------------------------------ waiting
    def _mark_stopped(self, container: Container) -> None:
        """The user stops it: no restart policy may bring it back. The monitor is told with a
        signal (it records it with the exit: no write here is needed, so a stop works on a
        full disk); the state says it too when the disk lets us (the monitor may be gone)."""
        if self.monitor_alive(container):
            try:
                os.kill(container.state["MonitorPid"], signal_module.SIGUSR2)
            except OSError:
                pass
        self._try_update(container, StoppedByUser=True)

    def _record_or_undo(self, container: Container, undo, **fields) -> None:
        """update_state (taking from the reserve on a full disk); if even that fails, ``undo``
        what was done, so that the state and the container still agree."""
        try:
            with_reserve(str(self.config.root), lambda: update_state(str(container.dir), **fields))
        except OSError:
            undo()
            raise

    def _try_update(self, container: Container, **fields) -> None:
        """update_state, unless the disk is full (for what the monitor records anyway)."""
        try:
            update_state(str(container.dir), **fields)
        except OSError as exc:
            if not is_no_space(exc):
                raise

    def _wait_exit(self, container: Container, timeout: float | None) -> bool:
        """Block until the container's current run ends; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sock = self._connect(container)
        if sock is not None:
            try:
                sock.sendall(b'{"session": "container", "stdin": false}\n')
                while True:
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        sock.settimeout(left)
                    kind, payload = read_frame(sock)
                    if kind == F_EXIT:
                        return True  # the monitor says the run is over (and has written it if it could)
                    if kind is None:
                        break
            except TimeoutError:
                return False
            except OSError:
                pass
            finally:
                sock.close()
        # The monitor has written the exit before telling us; poll for the rare races.
        while True:
            current = self._load(container.id)
            if current.status not in ("running", "paused"):
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def _wait_monitor_gone(self, container: Container, timeout: float) -> None:
        state = json.loads((container.dir / "state.json").read_text())
        pid, start = state.get("MonitorPid"), state.get("MonitorStart")
        if not pid or pid == os.getpid():
            return
        if process_start_time(pid) != start:
            return
        try:  # a pidfd becomes readable when the process exits: no polling
            fd = os.pidfd_open(pid)
        except OSError:
            fd = None
        if fd is not None:
            try:
                if process_start_time(pid) == start:  # still the same process: wait for it
                    select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
            return
        deadline = time.monotonic() + timeout
        while process_start_time(pid) == start and time.monotonic() < deadline:
            time.sleep(0.005)

    def _connect(self, container: Container) -> socket.socket | None:
        path = self.run_dir(container.id) / "attach.sock"
        if not self.monitor_alive(container):
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            return None
        return sock

    def wait(self, ref: str, timeout: float | None = None) -> int:
        """Block until the container is not running; its exit code."""
        container = self.get(ref)
        # A restarting container has just exited: its last exit code is the answer.
        if container.status in ("running", "paused") and not self._wait_exit(container, timeout):
            raise RuntimeFailure(f"timed out waiting for {container.name}")
        container = self._load(container.id)
        return int(container.state.get("ExitCode") or 0)

    # ------------------------------------------------------------ remove and rename
    def remove(self, ref: str, force: bool = False) -> None:
        container = self._load_listed(self.resolve(ref))
        with lock(str(container.dir / "op.lock")):
            container = self._load_listed(container.id)
            if container.unreadable:
                if not force:
                    raise Conflict(f"container {container.name}: {container.unreadable}; "
                                   "remove it with force")
                # What it runs, if anything, is unknown: runc knows (the monitor then exits).
                if (self.runtime.root / container.id).exists():
                    self.runtime.delete(container.id, force=True)
                self._discard(container)
            else:
                self._remove_locked(container, force)
        events.emit(self.config, "container", "destroy", container.id, {"name": container.name})
        from engine.system import gc

        gc.after_removal(self.config)  # its layers, if its image went before it

    def _remove_locked(self, container: Container, force: bool) -> None:
        if container.status in ACTIVE:
            if not force:
                raise Conflict(f"You cannot remove a {container.status} container {container.id}. "
                               "Stop the container before attempting removal or force remove")
            self._mark_stopped(container)
            if container.status == "paused":
                self.runtime.resume(container.id)
            try:
                self.runtime.kill(container.id, signal_module.SIGKILL, all_processes=True)
            except EngineError:
                pass
            if not self._wait_exit(container, 15):
                raise RuntimeFailure(f"container {container.name} did not die")
        full = self._disk_full()
        self._wait_monitor_gone(container, 2 if full else 10)
        current = self._load(container.id, reconcile=False)
        if self.monitor_alive(current) and current.state.get("MonitorPid") != os.getpid():
            if full and not (current.state.get("Pid") and process_start_time(current.state["Pid"])):
                # Its container is gone: it only waits for room to write an exit code that
                # this removal deletes anyway.
                os.kill(current.state["MonitorPid"], signal_module.SIGKILL)
                self._wait_monitor_gone(current, 5)
            if self.monitor_alive(current):
                raise RuntimeFailure(f"the monitor of {container.name} does not exit")
        if (self.runtime.root / container.id).exists():  # normally the monitor did it
            self.runtime.delete(container.id, force=True)
        self._discard(container)

    def _discard(self, container: Container) -> None:
        """Delete what a container that runs no more holds: its rootfs, endpoint, anonymous
        volumes, run directory, name and records."""
        try:
            self.snapshots.remove(container.id)
        except EngineError as exc:
            # Docker's "dead": half removed; `rm -f` again retries.
            if not container.unreadable:
                self._try_update(container, Status="dead", Error=f"removal failed: {exc}")
            raise
        self.networks.on_remove(container.id)
        self.volumes.release(container.config.get("Mounts"))
        shutil.rmtree(self.run_dir(container.id), ignore_errors=True)
        self._release_name(container.name, container.id)
        # Rename first so that a crash half-way leaves no container that looks whole.
        trash = self.root / f".removing-{container.id}"
        os.replace(container.dir, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def rename(self, ref: str, new_name: str) -> Container:
        new_name = check_name(new_name or "")
        container = self.get(ref)
        with lock(str(container.dir / "op.lock")):
            container = self._load(container.id)
            old = container.name
            if old == new_name:
                raise Conflict(f"Renaming a container with the same name as its current name: {old}")
            self._reserve_name(new_name, container.id)
            with lock(str(container.dir / "lock")):
                config = json.loads((container.dir / "config.json").read_text())
                config["Name"] = "/" + new_name
                write_json_atomic(str(container.dir / "config.json"), config, fsync=False, mode=0o600)
            self._release_name(old, container.id)
        events.emit(self.config, "container", "rename", container.id,
                    {"name": new_name, "oldName": "/" + old})
        return self._load(container.id)

    # ------------------------------------------------------------ reading
    def list(self, all: bool = False, filters: dict[str, list[str]] | None = None) -> list[dict]:
        out = []
        for container_id in self.ids():
            try:
                container = self._load_listed(container_id)
            except NotFound:  # removed meanwhile
                continue
            host = container.config["HostConfig"]
            if host.get("AutoRemove") and container.status == "exited" and \
                    not self.monitor_alive(container):
                # --rm whose remover died: finish the job.
                try:
                    self.remove(container_id)
                except (EngineError, OSError):
                    pass
                continue
            if not all and container.status not in ACTIVE and not filters:
                continue
            if filters and not self._matches(container, filters):
                continue
            out.append(self.summary(container))
        out.sort(key=lambda c: c["Created"], reverse=True)
        return out

    def _matches(self, container: Container, filters: dict[str, list[str]]) -> bool:
        for key, values in filters.items():
            if not values:
                continue
            if key == "status":
                if container.status not in values:
                    return False
            elif key == "name":
                if not any(v.lstrip("/") in container.name for v in values):
                    return False
            elif key == "id":
                if not any(container.id.startswith(v) for v in values):
                    return False
            elif key == "label":
                if not labels_match(container.config["Config"].get("Labels") or {}, values):
                    return False
            elif key == "ancestor":
                image_ref = container.config["Config"]["Image"]
                if not any(v in (image_ref, container.config["Image"]) or
                           container.config["Image"].removeprefix("sha256:").startswith(v.removeprefix("sha256:"))
                           or image_ref.split(":")[0] == v for v in values):
                    return False
            else:
                raise InvalidArgument(f"invalid filter {key!r}")
        return True

    def summary(self, container: Container) -> dict:
        """The container as ``docker ps`` lists it (``engine.containers.inspect``)."""
        return summary_row(self, container)

    def inspect(self, ref: str) -> dict:
        return inspect_document(self, self.get(ref))

    def top(self, ref: str) -> dict:
        container = self.get(ref)
        if container.status not in ("running", "paused"):
            raise Conflict(f"Container {container.name} is not running")
        pids = self.runtime.ps(container.id)
        titles = ["UID", "PID", "PPID", "STAT", "TIME", "CMD"]
        ticks = os.sysconf("SC_CLK_TCK")
        processes = []
        for pid in pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                status = Path(f"/proc/{pid}/status").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "?")
            cpu = (int(fields[11]) + int(fields[12])) // ticks
            cmd = " ".join(a.decode(errors="replace") for a in cmdline.split(b"\0") if a) or \
                f"[{stat[stat.find('(') + 1:stat.rfind(')')]}]"
            processes.append([uid, str(pid), fields[1], fields[0],
                              f"{cpu // 3600:02d}:{cpu // 60 % 60:02d}:{cpu % 60:02d}", cmd])
        return {"Titles": titles, "Processes": processes}

    # ------------------------------------------------------------ attach and run
    def attach(self, ref: str, *, stdin: bool = False, replay: bool = True,
               session: str = "container") -> AttachConnection:
        """A connection to the monitor's attach socket (see engine.supervisor.monitor for the protocol)."""
        container = self.get(ref)
        if container.status not in ("running", "paused"):
            raise Conflict(f"You cannot attach to a stopped container {container.name}")
        sock = self._connect(container)
        if sock is None:
            raise RuntimeFailure(f"the monitor of {container.name} is not reachable")
        try:
            sock.sendall(json.dumps({"session": session, "stdin": stdin, "replay": replay}).encode() + b"\n")
        except OSError:
            # The container exited between the state check and the hello: its monitor is
            # closing. Callers fall back to the log, which holds all of its output.
            sock.close()
            raise Conflict(f"container {container.name} has already exited") from None
        return AttachConnection(sock)

    def run(self, image: str, command: list[str] | None = None, *, detach: bool = True,
            remove: bool = False, **options) -> tuple[Container, int | None]:
        """create + start; without ``detach``, wait for the exit (and remove with ``remove``).
        Returns the container and its exit code (None when detached)."""
        container = self.create(image, command, auto_remove=remove, **options)
        try:
            container = self.start(container.id, waiter=remove and not detach)
        except EngineError:
            if remove:
                self.remove(container.id, force=True)
            raise
        if detach:
            return container, None
        code = self.wait(container.id)
        if remove:
            self.remove(container.id, force=True)
        return container, code

    def logs(self, ref: str, *, follow: bool = False, tail: int | None = None, since=None,
             until=None, stdout: bool = True, stderr: bool = True):
        """An iterator of log records ``{"time", "stream", "log"}`` (engine.logs.reader)."""
        from engine.logs import reader as logs

        container = self.get(ref)
        path = Path(container.config["LogPath"])
        if not follow:
            return logs.read(path, tail=tail, since=since, until=until, stdout=stdout, stderr=stderr)
        return logs.follow(path, lambda: self._load(container.id).status in ACTIVE, tail=tail,
                           since=since, stdout=stdout, stderr=stderr)

    def logs_async(self, ref: str, *, tail: int | None = None, since=None, stdout: bool = True,
                   stderr: bool = True):
        """An async iterator following the log until the container stops."""
        from engine.logs import reader as logs

        container = self.get(ref)
        return logs.follow_async(Path(container.config["LogPath"]),
                                 lambda: self._load(container.id).status in ACTIVE,
                                 tail=tail, since=since, stdout=stdout, stderr=stderr)

    def restore(self) -> list[str]:
        """Start again what a reboot (or the death of monitors) stopped and whose restart
        policy asks for it, as dockerd does when it starts (``engine.system.boot.should_restore``);
        returns the ids. ``engine.system.boot`` does the same at host start, after cleaning up."""
        from engine.system.boot import should_restore

        started = []
        for container_id in self.ids():
            try:
                container = self._load(container_id)
            except (NotFound, RuntimeFailure):  # removed meanwhile, or unreadable (listed dead)
                continue
            if container.status != "exited" or self.monitor_alive(container):
                continue
            if should_restore(container.config, container.state):
                try:
                    self.start(container_id)
                    started.append(container_id)
                except EngineError:
                    continue
        return started

    def in_use(self, image_id: str) -> list[str]:
        names = []
        for container_id in self.ids():
            try:
                config = json.loads((self.root / container_id / "config.json").read_text())
            except (OSError, ValueError):
                continue
            if config.get("Image") == image_id:
                names.append(config["Name"].lstrip("/"))
        return names
