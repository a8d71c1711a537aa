"""The per-container supervisor (the "monitor").

One small process per started container. ``engine.containers.manager`` starts it with fork,
setsid and fork again; that grandchild launches runc and then execs a fresh
``python -I -S`` importing this module, which loads while runc works. So it holds none of its
starter's memory (a Celery worker, the console: measured, a forked copy of the CLI alone
holds ~36 MB RSS against ~11 MB for this lean interpreter), is nobody's child but init's
(or the nearest subreaper's) and survives the starter's death. It is a child subreaper, so
the container's init and every ``runc exec -d`` process are re-parented to it and it
learns their exit codes. (Measured alternative: posix_spawn'ing the interpreter first and
launching runc from it copies nothing of the caller but puts the interpreter's start-up
before runc's, about 10 ms more per start.)

It:
- runs ``runc run -d`` with pipes (or ``--console-socket`` for a TTY) and owns stdio;
- writes the log as JSON lines ``{"time", "stream", "log"}`` (long lines split and
  marked ``partial``), rotated by size;
- records the exit code (WEXITSTATUS or 128+signal), finish time and OOM in
  ``state.json`` atomically, under the container's lock;
- applies the restart policy with a doubling back-off;
- serves an attach socket: output fan-out, stdin, resize, exit notices, and
  TTY exec sessions whose pty it holds so a client can detach and attach again.

It imports the standard library only: its start-up time is paid by every ``start``.

Attach protocol (unix stream socket ``attach.sock``): the client sends one JSON line,
``{"session": "container"|<exec id>, "stdin": bool, "replay": bool}`` or
``{"exec": <exec id>}`` (start the TTY exec whose process spec the caller wrote to
``execs/<exec id>.json`` and attach to it). Then both sides send frames: one type
byte, a 4-byte big-endian length, the payload. Types below (``F_*``).
"""

from __future__ import annotations

import _signal  # the C module: ``signal`` imports enum, milliseconds on every start
import errno
import fcntl
import marshal
import os
import sys
import time

from engine.base.clock import now_rfc3339
from engine.base.eventlog import emit_event
from engine.base.files import write_json_atomic
from engine.base.proc import process_start_time
from engine.base.space import ensure_reserve, with_reserve
from engine.containers.state import root_of, update_state
from engine.logs.writer import LogWriter

# Imported by _late_imports(): the monitor needs them only once it has told its starter
# that the container runs, so they stay off the start's critical path.
json = selectors = socket = struct = termios = None


def _late_imports() -> None:
    global json, selectors, socket, struct, termios
    import json
    import selectors
    import socket
    import struct
    import termios


# The engine side (engine.supervisor.launcher, the fork server) calls _late_imports() itself;
# the monitor calls it once runc is on its way.

F_STDIN, F_STDOUT, F_STDERR, F_EXIT, F_RESIZE, F_CLOSE_STDIN, F_INFO = 0, 1, 2, 3, 4, 5, 7
PR_SET_CHILD_SUBREAPER = 36
REPLAY_BYTES = 64 * 1024  # output kept for clients that attach late
CLIENT_BUFFER_LIMIT = 4 * 1024 * 1024  # a client this far behind is dropped


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BI", kind, len(payload)) + payload


def exit_code_of(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


# ---------------------------------------------------------------- attach clients and sessions

class Client:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.inbuf = b""
        self.outbuf = bytearray()
        self.header: dict | None = None
        self.session: Session | None = None
        self.closing = False


class Session:
    """An output source clients can attach to: the container itself or a TTY exec."""

    def __init__(self, name: str):
        self.name = name
        self.clients: list[Client] = []
        self.replay = bytearray()
        self.stdin_fd: int | None = None  # where client stdin goes
        self.pty_fd: int | None = None  # set for a TTY session: resize applies here
        self.pid: int | None = None

    def remember(self, kind: int, data: bytes) -> None:
        self.replay += frame(kind, data)
        if len(self.replay) > REPLAY_BYTES:
            del self.replay[:len(self.replay) - REPLAY_BYTES]


class Monitor:
    def __init__(self, spec: dict, listen_fd: int):
        self.spec = spec
        self.listener = socket.socket(fileno=listen_fd)
        self.dir = spec["dir"]
        self.id = spec["id"]
        self.sel = selectors.DefaultSelector()
        self.statuses: dict[int, int] = {}
        self.container = Session("container")
        self.execs: dict[str, Session] = {}
        self.clients: list[Client] = []
        self.readers: dict[int, tuple[Session, str]] = {}  # fd -> (session, stream)
        self.log: LogWriter | None = None
        self.init_pid: int | None = None
        self.wake_r, self.wake_w = os.pipe()
        self.root = root_of(self.dir)
        # Writes the disk refused, retried until they succeed (see record()).
        self.pending_state: dict = {}
        self.pending_files: dict[str, dict] = {}
        self.stop_noted = False
        self.final: dict | None = None  # the last run's exit, once no restart follows

    # ------------------------------------------------------------ plumbing
    def runtime_cmd(self, *args: str) -> list[str]:
        return runtime_cmd(self.spec, *args)

    def spawn(self, argv: list[str], stdin: int, stdout: int, stderr: int) -> int:
        actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
                   (os.POSIX_SPAWN_DUP2, stderr, 2)]
        return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.statuses[pid] = status

    def wait_for(self, pid: int) -> int:
        while pid not in self.statuses:
            try:
                got, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 255
            self.statuses[got] = status
        return self.statuses.pop(pid)

    def run_runtime(self, argv: list[str], stdin: int, stdout: int, err_w: int) -> int:
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            pid = self.spawn(argv, stdin if stdin >= 0 else devnull,
                             stdout if stdout >= 0 else devnull, err_w)
        finally:
            os.close(devnull)
        return exit_code_of(self.wait_for(pid))

    def event(self, action: str, **extra) -> None:
        try:
            with open(os.path.join(self.dir, "config.json")) as f:
                cfg = json.load(f)
            attributes = {"name": cfg.get("Name", "").lstrip("/"), "image": cfg.get("Config", {}).get("Image", "")}
            attributes.update(cfg.get("Config", {}).get("Labels") or {})
        except (OSError, ValueError):
            attributes = {}
        attributes.update({k: str(v) for k, v in extra.items()})
        try:
            emit_event(self.spec["events_path"], "container", action, self.id, attributes)
        except OSError:
            pass

    # ------------------------------------------------------------ writes a full disk may refuse
    def record(self, **fields) -> bool:
        """Merge ``fields`` into state.json now if the disk lets us (using the engine's
        reserve if need be), else keep them in memory and write them as soon as it does:
        a full disk delays the exit code, never loses it."""
        self.pending_state.update(fields)
        return self.flush_state()

    def write_file(self, path: str, data: dict) -> None:
        self.pending_files[path] = data
        self.flush_state()

    def flush_state(self) -> bool:
        """Try the pending writes again; True when none is left."""
        try:
            if self.pending_state:
                fields = self.pending_state
                with_reserve(self.root, lambda: update_state(self.dir, **fields))
                self.pending_state = {}
            for path, data in list(self.pending_files.items()):
                with_reserve(self.root, lambda: write_json_atomic(path, data, fsync=False, mode=0o600))  # noqa: B023
                del self.pending_files[path]
        except OSError:
            return False
        ensure_reserve(self.root)
        return True

    def pending(self) -> bool:
        return bool(self.pending_state or self.pending_files or (self.log and self.log.dropped_lines))

    def retry_writes(self) -> None:
        if self.stop_requested and not self.stop_noted:
            self.stop_noted = True
            self.record(StoppedByUser=True)
        self.flush_state()
        if self.log is not None:
            self.log.retry()

    # ------------------------------------------------------------ starting the container
    def attach_stdio(self, info: dict) -> None:
        """Take over the container's stdio (pipes, or the pty master the runtime sent)."""
        spec = self.spec
        err_r, out_r = info["err_r"], info.get("out_r")
        if "console_fd" in info:
            os.close(err_r)
            console = socket.socket(fileno=info["console_fd"])
            master = receive_pty(console)
            console.close()
            os.unlink(info["console_path"])
            os.set_blocking(master, False)
            self.container.pty_fd = master
            self.container.stdin_fd = master if spec["open_stdin"] else None
            self.add_reader(master, self.container, "stdout")
        else:
            for fd in (out_r, err_r):
                os.set_blocking(fd, False)
            self.add_reader(out_r, self.container, "stdout")
            self.add_reader(err_r, self.container, "stderr")
            self.container.stdin_fd = info.get("stdin_w")
            if self.container.stdin_fd is not None:
                os.set_blocking(self.container.stdin_fd, False)
        self.container.pid = self.init_pid

    def add_reader(self, fd: int, session: Session, stream: str) -> None:
        self.readers[fd] = (session, stream)
        self.sel.register(fd, selectors.EVENT_READ, ("output", fd))

    # ------------------------------------------------------------ the loop
    def serve(self) -> tuple[int, bool]:
        """Pump output and clients until the container's init has exited and its output is drained."""
        init_status = None
        while True:
            # Reap on every turn: a child may have died before our SIGCHLD handler existed.
            self.reap()
            if init_status is None and self.init_pid in self.statuses:
                init_status = self.statuses.pop(self.init_pid)
            self.check_exec_exits()
            container_fds = [fd for fd, (s, _) in self.readers.items() if s is self.container]
            if init_status is not None and not container_fds:
                return exit_code_of(init_status), False
            timeout = 0.2 if init_status is not None else 5.0
            if self.pending() or self.stop_requested and not self.stop_noted:
                self.retry_writes()
                timeout = min(timeout, 0.5)
            for key, _ in self.sel.select(timeout):
                kind = key.data[0]
                if kind == "wake":
                    read_available(self.wake_r)
                    self.reap()
                elif kind == "output":
                    self.on_output(key.data[1])
                elif kind == "listen":
                    self.on_accept()
                elif kind == "client":
                    self.on_client(key.data[1], key.events if hasattr(key, "events") else 0)
            container_fds = [fd for fd, (s, _) in self.readers.items() if s is self.container]
            if init_status is not None and container_fds and not self.sel.select(0):
                # init is gone and nothing more came: leftover fds belong to dead processes
                for fd in container_fds:
                    self.close_reader(fd)

    def on_output(self, fd: int) -> None:
        session, stream = self.readers[fd]
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO from a pty whose other side is closed
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.close_reader(fd)
            return
        if session is self.container and self.log is not None:
            self.log.feed(stream, data)
        kind = F_STDOUT if stream == "stdout" else F_STDERR
        session.remember(kind, data)
        packet = frame(kind, data)
        for client in list(session.clients):
            self.send(client, packet)

    def close_reader(self, fd: int) -> None:
        session, _ = self.readers.pop(fd)
        self.sel.unregister(fd)
        if fd != session.stdin_fd:
            os.close(fd)
        elif session.pty_fd == fd:
            os.close(fd)
            session.stdin_fd = None
        if session.pty_fd == fd:
            session.pty_fd = None

    # ------------------------------------------------------------ clients
    def on_accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        client = Client(sock)
        self.clients.append(client)
        self.sel.register(sock, selectors.EVENT_READ, ("client", client))

    def on_client(self, client: Client, _events: int) -> None:
        try:
            if client.outbuf:
                self.flush(client)
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        client.inbuf += data
        if client.header is None:
            nl = client.inbuf.find(b"\n")
            if nl == -1:
                return
            try:
                client.header = json.loads(client.inbuf[:nl])
            except ValueError:
                self.drop(client)
                return
            client.inbuf = client.inbuf[nl + 1:]
            self.on_header(client)
        while len(client.inbuf) >= 5 and client.session is not None:
            kind, size = struct.unpack(">BI", client.inbuf[:5])
            if len(client.inbuf) < 5 + size:
                break
            payload = client.inbuf[5:5 + size]
            client.inbuf = client.inbuf[5 + size:]
            self.on_frame(client, kind, payload)

    def on_header(self, client: Client) -> None:
        header = client.header
        if "exec" in header:
            session, error = self.start_exec(str(header["exec"]))
            if session is None:
                self.send(client, frame(F_EXIT, json.dumps({"error": error}).encode()))
                client.closing = True
                self.flush(client)
                return
            self.send(client, frame(F_INFO, json.dumps({"pid": session.pid}).encode()))
        else:
            name = str(header.get("session", "container"))
            session = self.container if name == "container" else self.execs.get(name)
            if session is None or (session is self.container and self.final is not None):
                # (a container that is done, its exit perhaps not yet written: say it)
                result = self.final if session is not None else {"error": "no such session"}
                self.send(client, frame(F_EXIT, json.dumps(result).encode()))
                client.closing = True
                self.flush(client)
                return
            if header.get("replay"):
                self.send(client, bytes(session.replay))
        client.session = session
        session.clients.append(client)

    def on_frame(self, client: Client, kind: int, payload: bytes) -> None:
        session = client.session
        if kind == F_STDIN and session.stdin_fd is not None and client.header.get("stdin", True):
            write_bounded(session.stdin_fd, payload)
        elif kind == F_CLOSE_STDIN and session.stdin_fd is not None and session.pty_fd is None:
            os.close(session.stdin_fd)
            session.stdin_fd = None
        elif kind == F_RESIZE and session.pty_fd is not None:
            try:
                size = json.loads(payload)
                set_winsize(session.pty_fd, int(size["h"]), int(size["w"]))
                if session.pid:
                    os.kill(session.pid, _signal.SIGWINCH)
            except (ValueError, KeyError, OSError):
                pass

    def send(self, client: Client, data: bytes) -> None:
        if not data:
            return
        client.outbuf += data
        if len(client.outbuf) > CLIENT_BUFFER_LIMIT:
            self.drop(client)
            return
        self.flush(client)

    def flush(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outbuf)
            del client.outbuf[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self.drop(client)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbuf else 0)
        try:
            self.sel.modify(client.sock, events, ("client", client))
        except (KeyError, ValueError):
            pass
        if client.closing and not client.outbuf:
            self.drop(client)

    def drop(self, client: Client) -> None:
        if client in self.clients:
            self.clients.remove(client)
            try:
                self.sel.unregister(client.sock)
            except (KeyError, ValueError):
                pass
            client.sock.close()
        if client.session is not None and client in client.session.clients:
            client.session.clients.remove(client)

    def end_session(self, session: Session, result: dict) -> None:
        packet = frame(F_EXIT, json.dumps(result).encode())
        for client in list(session.clients):
            client.sock.setblocking(True)
            try:
                client.sock.settimeout(1.0)
                client.sock.sendall(bytes(client.outbuf) + packet)
            except OSError:
                pass
            client.outbuf.clear()
            self.drop(client)

    # ------------------------------------------------------------ TTY exec sessions
    def start_exec(self, exec_id: str) -> tuple[Session | None, str]:
        if self.init_pid is None or self.init_pid in self.statuses:
            return None, "container is not running"
        exec_dir = os.path.join(self.dir, "execs")
        process = os.path.join(exec_dir, f"{exec_id}.json")
        if not os.path.exists(process) or exec_id in self.execs:
            return None, "no such exec"
        console_path = os.path.join(self.spec["run_dir"], f"e{exec_id[:12]}.sock")
        pid_file = os.path.join(exec_dir, f"{exec_id}.pid")
        console = listen_unix(console_path)
        err_r, err_w = os.pipe()
        try:
            code = self.run_runtime(self.runtime_cmd(
                "exec", "-d", "-t", "--console-socket", console_path, "--pid-file", pid_file,
                "--process", process, self.id), -1, -1, err_w)
            os.close(err_w)
            error = read_available(err_r).decode(errors="replace").strip()
            os.close(err_r)
            if code != 0:
                return None, runtime_error(error) or f"exec failed with status {code}"
            master = receive_pty(console)
        finally:
            console.close()
            os.unlink(console_path)
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.set_blocking(master, False)
        session = Session(exec_id)
        session.pid, session.pty_fd, session.stdin_fd = pid, master, master
        self.execs[exec_id] = session
        self.add_reader(master, session, "stdout")
        self.write_file(os.path.join(exec_dir, f"{exec_id}.state.json"),
                        {"Running": True, "Pid": pid, "ExitCode": None})
        return session, ""

    def check_exec_exits(self) -> None:
        for exec_id, session in list(self.execs.items()):
            if session.pid in self.statuses:
                code = exit_code_of(self.statuses.pop(session.pid))
                session.pid = None
                session.exit_code = code
            if session.pid is None and session.pty_fd is None:
                code = getattr(session, "exit_code", 255)
                self.write_file(os.path.join(self.dir, "execs", f"{exec_id}.state.json"),
                                {"Running": False, "Pid": 0, "ExitCode": code})
                self.event("exec_die", execID=exec_id, exitCode=code)
                self.end_session(session, {"ExitCode": code})
                del self.execs[exec_id]
            elif session.pid is None and session.pty_fd is not None and not self.sel.select(0):
                self.close_reader(session.pty_fd)

    # ------------------------------------------------------------ exit and restart
    def oom_killed(self) -> bool:
        path = os.path.join(self.spec["memory_cgroup"], "memory.oom_control")
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1]) > 0
        except OSError:
            pass
        return False

    def should_restart(self, exit_code: int, restart_count: int) -> bool:
        policy = self.spec.get("restart") or {}
        name = policy.get("Name") or "no"
        if self.stopped_by_user() or name == "no":
            return False
        if name == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return exit_code != 0 and (limit == 0 or restart_count < limit)
        return name in ("always", "unless-stopped")

    def stopped_by_user(self) -> bool:
        return self.stop_requested or bool(read_json(os.path.join(self.dir, "state.json")).get("StoppedByUser"))

    def sleep_serving(self, seconds: float, until_stopped: bool = True) -> None:
        """Back off before a restart while still answering clients; a stop wakes us."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in self.sel.select(min(left, 0.1)):
                kind = key.data[0]
                if kind == "wake":
                    read_available(self.wake_r)
                    self.reap()
                elif kind == "listen":
                    self.on_accept()
                elif kind == "client":
                    self.on_client(key.data[1], 0)
            if until_stopped and self.stopped_by_user():
                return

    def run(self, first: tuple) -> int:
        """``first``: (error, init pid, launch info, StartedAt) of the start ``main`` awaited."""
        spec = self.spec
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        _signal.set_wakeup_fd(self.wake_w)
        _signal.signal(_signal.SIGCHLD, lambda *_: None)
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake",))
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, ("listen",))
        self.log = LogWriter(spec["log_path"], spec["log_max_size"], spec["log_max_files"])
        os.chmod(self.dir, 0o700)  # owner-only, also for a container made before that rule
        me = {"MonitorPid": os.getpid(), "MonitorStart": process_start_time(os.getpid())}

        restart_count = int(read_json(os.path.join(self.dir, "state.json")).get("RestartCount") or 0)
        backoff = 0.1
        while True:
            if first is not None:
                error, pid, info, started_at = first
                first = None
            else:
                info = launch(spec)
                error, pid = await_runtime(spec, info, self.wait_for)
                started_at = now_rfc3339()
            if error is not None:
                self.record(Status="exited", Error=error, ExitCode=128, Pid=0, FinishedAt=now_rfc3339())
                self.runtime_delete()
                break
            self.init_pid = pid
            self.attach_stdio(info)
            started = time.monotonic()
            self.record(Status="running", Pid=self.init_pid, StartedAt=started_at,
                        Error="", ExitCode=0, OOMKilled=False, Paused=False, RestartCount=restart_count,
                        FinishedAt="0001-01-01T00:00:00Z", **me)
            self.event("start")
            exit_code, _ = self.serve()
            self.log.flush()
            oom = self.oom_killed()
            self.forget_stopped()
            restart = self.should_restart(exit_code, restart_count)
            finished_at = now_rfc3339()
            self.record(Status="restarting" if restart else "exited", Pid=0, ExitCode=exit_code,
                        OOMKilled=oom, Paused=False, FinishedAt=finished_at,
                        **({"StoppedByUser": True} if self.stop_requested else {}))
            if oom:
                self.event("oom")
            self.event("die", exitCode=exit_code)
            self.end_session(self.container, {"ExitCode": exit_code, "OOMKilled": oom})
            self.container = Session("container")
            if not restart:
                self.final = {"ExitCode": exit_code, "OOMKilled": oom, "FinishedAt": finished_at}
                break
            # Docker's back-off: doubles from 100 ms, reset once a run lasted 10 s.
            backoff = 0.1 if time.monotonic() - started >= 10 else min(backoff * 2, 60.0)
            restart_count += 1
            self.sleep_serving(backoff)
            if not self.should_restart(exit_code, restart_count - 1):
                self.record(Status="exited")
                break
            self.record(RestartCount=restart_count)
            self.event("restart")
        while not self.flush_state():  # the exit code waits in memory for room on the disk
            self.sleep_serving(0.5, until_stopped=False)
        self.log.retry()
        self.listener.close()
        try:
            os.unlink(spec["attach_socket"])
        except OSError:
            pass
        self.auto_remove()
        return 0

    @property
    def stop_requested(self) -> bool:
        return _stop_requested

    def forget_stopped(self) -> None:
        """Drop a stopped container from the runtime: with its init reaped that is only
        removing the cgroups runc recorded and runc's state directory. Done here to spare a
        ``runc delete`` process (~15 ms of every run); anything unexpected falls back to it."""
        state_dir = os.path.join(self.spec["runtime_root"], self.id)
        try:
            with open(os.path.join(state_dir, "state.json")) as f:
                paths = json.load(f).get("cgroup_paths") or {}
            for path in paths.values():
                for attempt in range(50):  # other processes of the pid namespace may still be dying
                    try:
                        os.rmdir(path)
                        break
                    except FileNotFoundError:
                        break
                    except OSError as exc:
                        if exc.errno != errno.EBUSY or attempt == 49:
                            raise
                        time.sleep(0.002)
            for name in os.listdir(state_dir):
                os.unlink(os.path.join(state_dir, name))
            os.rmdir(state_dir)
        except FileNotFoundError:
            pass
        except (OSError, ValueError):
            self.runtime_delete()

    def runtime_delete(self) -> None:
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            self.run_runtime(self.runtime_cmd("delete", "--force", self.id), -1, -1, devnull)
        finally:
            os.close(devnull)

    def auto_remove(self) -> None:
        """--rm: remove the container unless a live caller said it would do it."""
        spec = self.spec
        if not spec.get("auto_remove") or not spec.get("cleanup"):
            return
        waiter = spec.get("waiter")
        if waiter and process_start_time(waiter[0]) == waiter[1]:
            return
        env = dict(os.environ, **spec.get("cleanup_env", {}))
        os.execve(spec["cleanup"][0], spec["cleanup"], env)


# ---------------------------------------------------------------- launching runc

_stop_requested = False  # SIGUSR2: a user stopped the container (stop, rm -f); no restart


def _on_stop_request(*_) -> None:
    global _stop_requested
    _stop_requested = True


def runtime_cmd(spec: dict, *args: str) -> list[str]:
    return [spec["runtime"], "--root", spec["runtime_root"],
            "--log", os.path.join(spec["dir"], "runtime.log"), "--log-format", "json", *args]


def launch(spec: dict) -> dict:
    """Spawn ``runc run -d`` with the container's stdio (pipes, or a console socket for a
    TTY) and return without waiting: the runtime's pid and our ends of the fds.

    The starter calls this in the monitor's process before exec'ing the monitor's fresh
    interpreter, so that runc and Python start in parallel; restarts call it in the monitor.
    """
    err_r, err_w = os.pipe()
    argv = runtime_cmd(spec, "run", "-d", "--pid-file", os.path.join(spec["run_dir"], "init.pid"),
                       "--bundle", spec["bundle"])
    info: dict = {"err_r": err_r}
    devnull = os.open(os.devnull, os.O_RDWR)
    child_fds = [err_w, devnull]
    stdin = stdout = devnull
    if spec["tty"]:
        path = os.path.join(spec["run_dir"], "console.sock")
        info["console_fd"] = listen_unix(path).detach()
        info["console_path"] = path
        argv += ["--console-socket", path]
    else:
        info["out_r"], stdout = os.pipe()
        child_fds.append(stdout)
        if spec["open_stdin"]:
            stdin, info["stdin_w"] = os.pipe()
            child_fds.append(stdin)
    argv.append(spec["id"])
    actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
               (os.POSIX_SPAWN_DUP2, err_w, 2)]
    try:
        info["pid"] = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    finally:
        for fd in child_fds:
            os.close(fd)
    return info


def _waitpid(pid: int) -> int:
    return os.waitpid(pid, 0)[1]


def await_runtime(spec: dict, info: dict, wait=_waitpid) -> tuple[str | None, int]:
    """Wait for the ``runc run -d`` that ``launch`` spawned: (error, 0) or (None, init pid).
    Uses ``os`` only: it runs before the monitor's late imports."""
    code = exit_code_of(wait(info["pid"]))
    if code != 0:
        error = read_available(info["err_r"]).decode(errors="replace").strip()
        for key in ("err_r", "out_r", "stdin_w", "console_fd"):
            if key in info:
                os.close(info[key])
        return runtime_error(error) or f"runtime exited with status {code}", 0
    with open(os.path.join(spec["run_dir"], "init.pid")) as f:  # in the run root: a container may fill the disk at once
        return None, int(f.read().strip())


def detach(err_path: str) -> None:
    """In a forked child, to become a monitor: new session, fork again (the parent exits:
    we are init's), stdio to /dev/null and ``err_path``, subreaper for the container's
    processes."""
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(err, 2)
    os.close(devnull)
    os.close(err)
    become_subreaper()


def become_subreaper() -> None:
    """Called by the starter before exec'ing the monitor: the flag survives execve."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# ---------------------------------------------------------------- small OS helpers

def listen_unix(path: str) -> socket.socket:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(16)
    return sock


def receive_pty(console: socket.socket) -> int:
    """The pty master fd the runtime sent over the console socket."""
    console.settimeout(10)
    conn, _ = console.accept()
    try:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    finally:
        conn.close()
    if not fds:
        raise OSError("the runtime sent no terminal")
    return fds[0]


def write_bounded(fd: int, data: bytes, patience: float = 1.0) -> None:
    """Write stdin for the container without ever blocking the monitor for long: a process
    that does not read its stdin loses what does not fit in ``patience`` seconds."""
    import select

    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            if not select.select([], [fd], [], patience)[1]:
                return
        except OSError:
            return


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def runtime_error(text: str) -> str:
    """The meaningful part of runc's error output."""
    _late_imports()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    message = lines[-1]
    try:  # a logrus JSON line
        message = json.loads(message).get("msg", message)
    except ValueError:
        pass
    return message


def report(sync_fd: int, message: str) -> None:
    """Tell the starter how the first start went: ``ok <init pid> <monitor pid> <monitor start>
    <StartedAt>`` or ``error <message>``."""
    try:
        os.write(sync_fd, message.encode())
    finally:
        os.close(sync_fd)


def main(argv: list[str]) -> int:
    """``monitor.py SPEC k=fd,...``: SPEC is marshal'd; the fds are those of the first run,
    which the starter launched before exec'ing us (see ``launch``), plus ``sync`` (our answer
    to the starter) and ``listen`` (the attach socket)."""
    with open(argv[1], "rb") as f:
        spec = marshal.load(f)
    info = {k: (v if k == "console_path" else int(v)) for k, v in
            (item.split("=", 1) for item in argv[2].split(","))}
    sync_fd, listen_fd = info.pop("sync"), info.pop("listen")
    # runc is busy starting the container meanwhile: load the rest now, not after.
    _late_imports()
    return supervise(spec, info, sync_fd, listen_fd)


def supervise(spec: dict, info: dict, sync_fd: int, listen_fd: int) -> int:
    """Await the first start that ``launch`` began, answer the starter on ``sync_fd``, then
    watch the container until it is done (restarts included)."""
    error, pid = await_runtime(spec, info)
    if error is not None:
        # The start failed: record it and clean up before answering, so the starter sees
        # the final state.
        code = 127 if "not found" in error or "no such file" in error else 126
        try:
            with_reserve(root_of(spec["dir"]), lambda: update_state(spec["dir"], Status="created", Error=error,
                                                                    ExitCode=code, Pid=0))
        except OSError:
            pass  # the starter is told all the same
        Monitor(spec, listen_fd).runtime_delete()
        report(sync_fd, f"error {error}")
        return 0
    started_at = now_rfc3339()
    me = os.getpid()
    # Before the starter hears of us (and may stop the container at once): the default
    # action of these signals would kill us.
    _signal.signal(_signal.SIGUSR1, lambda *_: None)  # "look at the state again"
    _signal.signal(_signal.SIGUSR2, _on_stop_request)
    report(sync_fd, f"ok {pid} {me} {process_start_time(me)} {started_at}")
    return Monitor(spec, listen_fd).run((None, pid, info, started_at))


def run_main() -> None:
    os._exit(main(sys.argv))  # nothing left to flush: skip the interpreter's teardown

