"""``python -m engine``: hand the command to the run root's command server when one answers,
else run it in this process (and start a server for the commands that follow).

An interpreter that imports the engine spends ~50 ms on imports before a command does
anything; ``docker`` answers quickly because its CLI is a thin client of a daemon that is
already loaded. The command server (``engine/supervisor/cliserver.py``) is that loaded process, without
being a daemon to install: started on first use, gone after ten idle minutes, and only a
speed-up (no server, or ``BERTH_ENGINE_CLI_SERVER=0``: the command runs here, the same).

The command runs in a child the server forks for it, with this process's arguments,
environment, working directory, umask and standard input, output and error (passed as file
descriptors). Signals this process gets (Ctrl-C, a terminal resize, ...) are passed on; the
child's exit code becomes ours. Commands that need a controlling terminal of their own (a
password prompt) always run here.

Imported on every command: no engine module on the fast path, and the C modules ``_socket``
and ``_signal`` rather than ``socket`` and ``signal`` (their enums take longer to import
than the rest of the client runs).
"""

from __future__ import annotations

import _signal
import _socket
import marshal
import os
import sys

from engine.supervisor import servers

ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWITCH = "BERTH_ENGINE_CLI_SERVER"
RELAYED_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGWINCH,
                   _signal.SIGUSR1, _signal.SIGUSR2)
RUN_HERE = ("login",)  # getpass needs /dev/tty, which a server's child does not have


def run(argv: list[str]) -> int:
    run_root, command = _front(argv)
    if os.environ.get(SWITCH, "1") == "0" or command in RUN_HERE:
        return _here(argv)
    run_root = run_root or os.environ.get("BERTH_ENGINE_RUN", "/run/berth")
    sock_path, lock_path = server_paths(run_root)
    code = _through_server(sock_path, argv)
    if code is not None:
        _leave(code)  # does not return
    start_server(run_root, sock_path, lock_path)
    return _here(argv)


def _leave(code: int) -> None:
    """Nothing of ours to tear down: skip the interpreter's (a few ms per command)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF)


def _here(argv: list[str]) -> int:
    from engine.cli import main

    return main(argv)


def _front(argv: list[str]) -> tuple[str | None, str | None]:
    """(the --run-root given, if any; the command): the global options and the first word
    after them, as ``engine.cli`` will read them."""
    run_root = None
    words = iter(argv)
    for word in words:
        if word in ("--root", "--run-root"):
            value = next(words, None)
            if word == "--run-root":
                run_root = value
        elif word.startswith("--run-root="):
            run_root = word.split("=", 1)[1]
        elif not word.startswith("-"):
            return run_root, word
    return run_root, None


def command_in(argv: list[str]) -> str | None:
    """The first word that is not a global option (nor its value)."""
    return _front(argv)[1]


def server_paths(run_root: str) -> tuple[str, str]:
    """Named after every engine source file, the interpreter and the namespaces we see (a
    client in another mount or network namespace must not have its paths or its loopback
    read in ours): changed code or another view of the host, another server."""
    facts = [sys.executable]
    for kind in ("mnt", "net", "pid", "user"):
        try:
            facts.append(os.readlink(f"/proc/self/ns/{kind}"))
        except OSError:
            facts.append(kind)
    sources = []
    for directory, subdirs, names in os.walk(ENGINE_DIR):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        sources += [os.path.join(directory, name) for name in sorted(names) if name.endswith(".py")]
    version = servers.version(*sources, extra=" ".join(facts + sources))
    return os.path.join(run_root, f"cli-{version}.sock"), os.path.join(run_root, f"cli-{version}.lock")


def _through_server(sock_path: str, argv: list[str]) -> int | None:
    """The command's exit code, or None when no server took it (nothing ran)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    lines = _Lines(sock)
    relay = _Relay()
    try:
        try:
            sock.connect(sock_path)
            request = marshal.dumps({
                "argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ), "umask": _umask(),
                "encoding": getattr(sys.stdout, "encoding", None) or "utf-8",
                "errors": getattr(sys.stdout, "errors", None) or "strict",
            })
            relay.install()  # from now on our signals are the command's
            fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
            sock.sendmsg([len(request).to_bytes(4, "big")], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
            sock.sendall(request)
            started = lines.next().split()
            if len(started) != 2 or started[0] != b"STARTED":
                return None
        except OSError:
            return None
        # From here the command runs in the server's child: never run it a second time.
        relay.to(int(started[1]))
        try:
            line = lines.next()
        except OSError:
            line = b""
    finally:
        relay.uninstall()
        sock.close()
    if not line.startswith(b"EXIT "):
        print("Error: the engine's command server went away while running the command", file=sys.stderr)
        return 1
    return int(line.split()[1])


class _Lines:
    """Lines from a socket (``makefile`` lives in the ``socket`` module we do not load)."""

    def __init__(self, sock):
        self.sock, self.buffer = sock, b""

    def next(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                return b""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line


class _Relay:
    """Our signals, passed on to the command's process (kept until we know it). Ctrl-Z
    stops both it and us; ``fg`` continues both."""

    def __init__(self):
        self.pid: int | None = None
        self.pending: list[int] = []
        self.previous: dict = {}

    def install(self) -> None:
        for sig in (*RELAYED_SIGNALS, _signal.SIGTSTP, _signal.SIGCONT):
            if _signal.getsignal(sig) != _signal.SIG_IGN:
                self.previous[sig] = _signal.signal(sig, self.handle)

    def uninstall(self) -> None:
        for sig, handler in self.previous.items():
            _signal.signal(sig, handler)

    def to(self, pid: int) -> None:
        self.pid = pid
        for number in self.pending:
            self.handle(number, None)

    def handle(self, number: int, _frame) -> None:
        if self.pid is None:
            self.pending.append(number)
            return
        try:
            os.kill(self.pid, _signal.SIGSTOP if number == _signal.SIGTSTP else number)
        except OSError:
            return
        if number == _signal.SIGTSTP:
            os.kill(os.getpid(), _signal.SIGSTOP)  # as the shell asked; SIGCONT wakes us both


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def start_server(run_root: str, sock_path: str, lock_path: str) -> None:
    """In the background, as init's child (not ours)."""
    try:
        os.makedirs(run_root, exist_ok=True)
    except OSError:
        return  # not ours to write (an ordinary user asking for help): no server, no harm
    launcher = (f"import sys; sys.path.insert(0, {os.path.dirname(ENGINE_DIR)!r}); "
                "from engine.supervisor import cliserver; sys.exit(cliserver.main(sys.argv))")
    servers.spawn_detached([sys.executable, "-I", "-c", launcher, sock_path, lock_path],
                           os.path.join(run_root, "cliserver.err"))
