"""The command-line server: an interpreter with the engine imported that forks one child per
``python -m engine`` command handed to it by ``engine/supervisor/cliclient.py`` (read that first).

The child takes the client's standard input, output and error, arguments, environment,
working directory and umask, runs ``engine.cli.main`` and answers ``EXIT <code>``. The
client passes its signals on to the child's pid; the client gone (its end of the socket
closed) is a Ctrl-C, and after a grace period the end.

Protocol on the owner-only socket: the client sends 4 bytes (the request's length, big
endian) with its fds 0, 1 and 2 attached, then the request (marshal'd dict); the child
writes ``STARTED <pid>\n`` before running anything (no ``STARTED``: nothing ran) and
``EXIT <code>\n`` at the end.
"""

from __future__ import annotations

import gc
import io
import marshal
import os
import signal
import socket
import sys
import threading
import time
import traceback

from engine.supervisor import servers

IDLE_SECONDS = 600
MAX_REQUEST = 1 << 20
GONE_CLIENT_GRACE = 3.0


def main(argv: list[str]) -> int:
    """``cliserver SOCKET LOCK [IDLE_SECONDS]``"""
    return serve(argv[1], argv[2], *(float(value) for value in argv[3:4]))


def serve(socket_path: str, lock_path: str, idle_seconds: float = IDLE_SECONDS) -> int:
    lock_fd = servers.take_lock(lock_path)
    if lock_fd is None:
        return 0  # another server has this run root and version
    os.chdir("/")
    _preload()
    server = servers.listen_owner_only(socket_path)
    server.settimeout(1.0)
    gc.freeze()  # what is loaded now stays shared with the children: the collector won't touch it
    last_request = time.monotonic()
    try:
        while True:
            _reap()
            try:
                conn, _ = server.accept()
            except TimeoutError:
                if time.monotonic() - last_request > idle_seconds:
                    return 0  # children running now are init's from here on
                continue
            last_request = time.monotonic()
            with conn:
                request = _request(conn)
                if request is None:
                    continue
                fds, command = request
                pid = os.fork()
                if pid == 0:
                    server.close()
                    os.close(lock_fd)  # the lock is the server's alone
                    _run_command(conn, fds, command)
                for fd in fds:
                    os.close(fd)
    finally:
        servers.unlink_quietly(socket_path)


NOT_PRELOADED = ("engine.__main__",)  # runs a command when imported


def _preload() -> None:
    """Every engine module and every command's parser, once, here: a child then starts at
    once (a module first imported in a child costs each command its import again)."""
    import importlib
    import pkgutil

    import engine
    from engine import cli

    for module in pkgutil.walk_packages(engine.__path__, "engine."):
        if module.name not in NOT_PRELOADED:
            try:
                importlib.import_module(module.name)
            except ImportError as exc:  # a command that needs it will say so, in its child
                print(f"cliserver: not preloaded: {module.name}: {exc}", file=sys.stderr)
    cli.build_parsers()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _request(conn: socket.socket) -> tuple[list[int], dict] | None:
    fds: list[int] = []
    try:
        if not servers.peer_is_owner(conn):
            return None
        conn.settimeout(5)
        head, fds, _, _ = socket.recv_fds(conn, 4, 3)
        length = int.from_bytes(head, "big") if len(head) == 4 else 0
        if len(fds) != 3 or not 0 < length <= MAX_REQUEST:
            raise ValueError("malformed request")
        data = b""
        while len(data) < length:
            chunk = conn.recv(length - len(data))
            if not chunk:
                raise ValueError("truncated request")
            data += chunk
        command = marshal.loads(data)  # from our own user only (checked above)
        if not (isinstance(command.get("argv"), list) and isinstance(command.get("cwd"), str)
                and isinstance(command.get("env"), dict)):
            raise ValueError("malformed request")
    except (OSError, ValueError, EOFError, TypeError, AttributeError):
        for fd in fds:
            os.close(fd)
        return None
    return fds, command


def _run_command(conn: socket.socket, fds: list[int], command: dict) -> None:
    """In the forked child. Never returns."""
    code = 1
    try:
        code = _command(conn, fds, command)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # the command's own errors are handled in engine.cli; this is ours
        traceback.print_exc()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)  # nothing may interrupt the answer
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            conn.sendall(f"EXIT {code}\n".encode())
        except OSError:
            pass
        os._exit(0)


def _command(conn: socket.socket, fds: list[int], command: dict) -> int:
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    _stdio(command.get("encoding") or "utf-8", command.get("errors") or "strict")
    conn.settimeout(None)
    conn.sendall(f"STARTED {os.getpid()}\n".encode())  # from here on an error is the command's, not a reason to retry
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.chdir(command["cwd"])
    except OSError as exc:
        print(f"Error: cannot use the working directory: {exc}", file=sys.stderr)
        return 1
    os.umask(int(command.get("umask", 0o022)))
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in command["env"].items()})
    threading.Thread(target=_end_with_client, args=(conn,), daemon=True).start()
    from engine.cli import main

    try:
        return main([str(word) for word in command["argv"]])
    except SystemExit as exc:  # argparse's errors and --help
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1


def _stdio(encoding: str, errors: str) -> None:
    """Python's standard streams on the client's descriptors, as its own would be."""
    def writer(fd: int, stream_errors: str, line_buffering: bool):
        raw = io.FileIO(fd, "w", closefd=False)
        return io.TextIOWrapper(io.BufferedWriter(raw), encoding=encoding, errors=stream_errors,
                                line_buffering=line_buffering)

    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                 encoding=encoding, errors=errors)
    sys.stdout = writer(1, errors, os.isatty(1))
    sys.stderr = writer(2, "backslashreplace", True)


def _end_with_client(conn: socket.socket) -> None:
    """The client's end closed while the command runs (it was killed): a Ctrl-C, then, if
    that is not enough, the end, as if the client's own process had been running it."""
    while True:
        try:
            data = conn.recv(64)
        except OSError:
            data = b""
        if not data:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(GONE_CLIENT_GRACE)
            os._exit(130)
