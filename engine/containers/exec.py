"""Running a command in a running container (``docker exec``).

Without a TTY the caller runs ``runc exec`` in the foreground with pipes: separate
stdout and stderr, and runc's exit status is the command's.

With a TTY, runc refuses a foreground console socket (engine.md section 9), and the pty
must outlive the caller so that a websocket can detach and attach again: the
container's monitor runs ``runc exec -d -t --console-socket``, holds the pty master,
reaps the process (it is the subreaper) and records its exit code in
``execs/<exec id>.state.json``. Clients talk to it over the attach socket.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine import events
from engine.base.files import write_json_atomic
from engine.containers.attach import AttachConnection
from engine.containers.inputs import merge_env, parse_env
from engine.containers.manager import Container, Containers
from engine.errors import Conflict, InvalidArgument, NotFound, RuntimeFailure
from engine.runtime import users
from engine.runtime.runc import build_process
from engine.supervisor.monitor import F_EXIT, F_INFO


class ExecRefused(RuntimeFailure):
    """The runtime would not start the command (not found, not executable...)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


def _running(containers: Containers, ref: str) -> Container:
    container = containers.get(ref)
    if container.status == "paused":
        raise Conflict(f"Container {container.name} is paused, unpause the container before exec")
    if container.status != "running":
        raise Conflict(f"Container {container.name} is not running")
    return container


def _write_process(container: Container, cmd: list[str], *, user: str | None, workdir: str | None,
                   env: list[str] | None, tty: bool) -> tuple[str, Path]:
    if not cmd:
        raise InvalidArgument("no command given to exec")
    cfg = container.config["Config"]
    rootfs = Path(container.config["Rootfs"])
    resolved = users.resolve(rootfs, user if user is not None else cfg.get("User"))
    environment = merge_env(cfg.get("Env") or [], parse_env(env))
    if tty and not any(e.startswith("TERM=") for e in environment):
        environment.append("TERM=xterm")
    if not any(e.startswith("HOME=") for e in environment):
        environment.append(f"HOME={resolved.home}")
    workdir = workdir or cfg.get("WorkingDir") or "/"
    if not workdir.startswith("/"):
        raise InvalidArgument(f"the working directory {workdir!r} is not absolute")
    process = build_process(args=list(cmd), env=environment, cwd=workdir, uid=resolved.uid,
                            gid=resolved.gid, additional_gids=resolved.additional_gids, terminal=tty)
    exec_id = secrets.token_hex(16)
    exec_dir = container.dir / "execs"
    exec_dir.mkdir(exist_ok=True)
    path = exec_dir / f"{exec_id}.json"
    write_json_atomic(str(path), process, fsync=False, mode=0o600)
    return exec_id, path


def exec_start(containers: Containers, ref: str, cmd: list[str], *, user: str | None = None,
               workdir: str | None = None, env: list[str] | None = None,
               stdin: bool = False, detach: bool = False) -> subprocess.Popen:
    """A non-TTY exec as a Popen: ``.stdout``/``.stderr`` pipes, ``.wait()`` gives the exit code."""
    container = _running(containers, ref)
    exec_id, path = _write_process(container, cmd, user=user, workdir=workdir, env=env, tty=False)
    events.emit(containers.config, "container", "exec_create", container.id,
                {"name": container.name, "execID": exec_id, "execCommand": " ".join(cmd)})
    argv = containers.runtime.base() + ["exec"] + (["-d"] if detach else []) + \
        ["--process", str(path), container.id]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL if detach else subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.exec_id = exec_id
    events.emit(containers.config, "container", "exec_start", container.id,
                {"name": container.name, "execID": exec_id})
    return proc


def exec_run(containers: Containers, ref: str, cmd: list[str], *, user: str | None = None,
             workdir: str | None = None, env: list[str] | None = None, input: bytes | None = None,
             timeout: float | None = None) -> ExecResult:
    """Run ``cmd`` to completion; its exit code and separate stdout and stderr."""
    proc = exec_start(containers, ref, cmd, user=user, workdir=workdir, env=env, stdin=input is not None)
    out, err = proc.communicate(input, timeout=timeout)
    code = proc.returncode
    container = containers.get(ref)
    refused = runtime_exec_error(err) if code != 0 and not out else None
    if refused:
        raise ExecRefused(*refused)
    events.emit(containers.config, "container", "exec_die", container.id,
                {"name": container.name, "execID": proc.exec_id, "exitCode": code})
    return ExecResult(code, out, err)


_LOGFMT_MSG = re.compile(r'\blevel=(?:error|fatal) msg="((?:[^"\\]|\\.)*)"')
_RUNC_PREFIXES = ("exec failed: ", "unable to start container process: ", "runc exec failed: ")


def runtime_exec_error(stderr: bytes | str) -> tuple[str, int] | None:
    """If ``stderr`` ends with runc's refusal to start the process (a logrus line, text or
    JSON), Docker's message for it and the exit code Docker gives (127: not found, 126:
    cannot be run); else None (the command's own output)."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[-1]
    message = None
    if '"level":"error"' in line or '"level":"fatal"' in line:
        try:
            message = json.loads(line).get("msg")
        except ValueError:
            message = None
    elif (match := _LOGFMT_MSG.search(line)) and line.startswith("time="):
        message = re.sub(r"\\(.)", r"\1", match.group(1))
    elif "exec failed:" in line or "unable to start container process" in line:
        message = line
    if not message:
        return None
    return oci_exec_failure(message)


def oci_exec_failure(message: str) -> tuple[str, int]:
    """runc's message (``exec failed: unable to start container process: exec: "x": ...``)
    as Docker says it: ``OCI runtime exec failed: exec: "x": ...``, with its exit code."""
    core = message.strip()
    for _ in range(3):
        for prefix in _RUNC_PREFIXES:
            core = core.removeprefix(prefix)
    not_found = "executable file not found" in core or "no such file or directory" in core
    return f"OCI runtime exec failed: {core}", 127 if not_found else 126


def exec_tty(containers: Containers, ref: str, cmd: list[str], *, user: str | None = None,
             workdir: str | None = None, env: list[str] | None = None) -> tuple[str, AttachConnection]:
    """Start ``cmd`` with a TTY held by the container's monitor; returns the exec id and a
    connection attached to it (stdin, output, resize). Close it to detach; the exec lives on
    and ``exec_attach`` joins it again."""
    container = _running(containers, ref)
    exec_id, _ = _write_process(container, cmd, user=user, workdir=workdir, env=env, tty=True)
    events.emit(containers.config, "container", "exec_create", container.id,
                {"name": container.name, "execID": exec_id, "execCommand": " ".join(cmd)})
    sock = containers._connect(container)
    if sock is None:
        raise RuntimeFailure(f"the monitor of {container.name} is not reachable")
    sock.sendall(json.dumps({"exec": exec_id}).encode() + b"\n")
    conn = AttachConnection(sock)
    kind, payload = conn.read()
    if kind != F_INFO:
        conn.close()
        message = json.loads(payload).get("error", "exec failed") if kind == F_EXIT else "exec failed"
        raise ExecRefused(*oci_exec_failure(message))
    events.emit(containers.config, "container", "exec_start", container.id,
                {"name": container.name, "execID": exec_id})
    return exec_id, conn


def exec_attach(containers: Containers, ref: str, exec_id: str, replay: bool = True) -> AttachConnection:
    return containers.attach(ref, stdin=True, replay=replay, session=exec_id)


def exec_inspect(containers: Containers, ref: str, exec_id: str) -> dict:
    """``{"Running", "Pid", "ExitCode"}`` of a TTY exec."""
    container = containers.get(ref)
    path = container.dir / "execs" / f"{exec_id}.state.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFound(f"No such exec instance: {exec_id}") from None


def record_exit(containers: Containers, ref: str, exec_id: str, code: int) -> None:
    """The exec_die event of a non-TTY exec (the monitor emits it for TTY execs)."""
    container = containers.get(ref)
    events.emit(containers.config, "container", "exec_die", container.id,
                {"name": container.name, "execID": exec_id, "exitCode": code})
