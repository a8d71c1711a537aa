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
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine import events, users
from engine.containers import AttachConnection, Container, Containers, merge_env, parse_env
from engine.errors import Conflict, InvalidArgument, NotFound, RuntimeFailure
from engine.monitor import F_EXIT, F_INFO, write_json_atomic
from engine.runtime import build_process


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
    write_json_atomic(str(path), process)
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
    if code != 0 and not out and _runtime_refused(err):
        raise RuntimeFailure(f"exec failed: {_runtime_refused(err)}")
    events.emit(containers.config, "container", "exec_die", container.id,
                {"name": container.name, "execID": proc.exec_id, "exitCode": code})
    return ExecResult(code, out, err)


def _runtime_refused(stderr: bytes) -> str:
    """runc's own error (as opposed to the command's stderr): its messages are JSON or 'exec failed'."""
    text = stderr.decode(errors="replace").strip()
    for line in reversed(text.splitlines()):
        if '"level":"error"' in line:
            try:
                return json.loads(line).get("msg", line)
            except ValueError:
                return line
        if "exec failed:" in line or "unable to start container process" in line:
            return line
    return ""


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
        raise RuntimeFailure(f"exec failed: {message}")
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
