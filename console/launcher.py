"""Start all of Berth in the foreground: ``python -m console.launcher``.

It checks Redis (and starts a private one when none is running on the local
default address), prepares the database, then runs the Celery worker and beat,
the engine-event follower and daphne until Ctrl-C, which stops them all.

It supervises them: a child that exits is started again after a back-off (1 s,
doubling to 30 s; back to 1 s once it has run for a minute), and says so. Its
children die with it, even when it is killed with SIGKILL (PR_SET_PDEATHSIG), and
only one launcher runs per data directory (``launcher.pid``, flocked): a second
one refuses to start and names the first.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from console import processes

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def log(message: str) -> None:
    print(f"berth: {message}", flush=True)


PR_SET_PDEATHSIG = 1
BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER = 1.0, 30.0, 60.0


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when the launcher dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(command: list[str], **kwargs) -> subprocess.Popen:
    """A child in its own process group (stopped as a group) that dies with the launcher."""
    return subprocess.Popen(command, start_new_session=True, preexec_fn=_die_with_parent, **kwargs)


def lock_data_dir(data_dir: Path) -> int:
    """Hold ``launcher.pid`` in the data directory for as long as this process lives; exit
    saying which launcher runs if another holds it."""
    path = data_dir / "launcher.pid"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        sys.exit(f"berth: another launcher (pid {other}) is already running on {data_dir}; "
                 "stop it first (Ctrl-C in its terminal, or kill " + other + ")")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class Child:
    """One supervised process: started again with a back-off whenever it exits."""

    def __init__(self, name: str, command: list[str], proc: subprocess.Popen | None = None):
        self.name, self.command, self.proc = name, command, proc
        self.backoff = BACKOFF_FIRST
        self.started_at = time.monotonic()
        self.restart_at: float | None = None

    def start(self) -> None:
        self.proc = spawn(self.command, cwd=BASE_DIR)
        self.started_at = time.monotonic()
        self.restart_at = None
        log(f"started {self.name} (pid {self.proc.pid}): {' '.join(self.command)}")

    def check(self, now: float) -> None:
        """Notice an exit and schedule the restart; restart when due."""
        if self.restart_at is None and self.proc is not None and self.proc.poll() is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # what it leaves of its group (a pool)
            if now - self.started_at >= STABLE_AFTER:
                self.backoff = BACKOFF_FIRST
            log(f"{self.name} (pid {self.proc.pid}) exited with {self.proc.returncode}; "
                f"restarting it in {self.backoff:.0f} s")
            self.restart_at = now + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        if self.restart_at is not None and now >= self.restart_at:
            self.start()


def redis_reachable(url: str) -> str | None:
    """None when Redis answers PING, else the reason it does not."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        return str(exc)
    return None


def ensure_redis(url: str, data_dir: Path) -> subprocess.Popen | None:
    """Use the Redis at ``url``; start one if it is local, down, and redis-server exists."""
    problem = redis_reachable(url)
    if problem is None:
        log(f"using Redis at {url}")
        return None
    parsed = urlparse(url)
    server = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if parsed.hostname not in LOCAL_HOSTS or server is None:
        sys.exit(
            f"berth: cannot reach Redis at {url}: {problem}.\n"
            "Start Redis (on Debian: apt-get install redis-server && systemctl start redis-server) "
            "or point BERTH_REDIS_URL at a running one."
        )
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = parsed.port or 6379
    log(f"no Redis on port {port}; starting one for Berth")
    proc = spawn(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(redis_dir),
         "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(50):
        if redis_reachable(url) is None:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.terminate()
    sys.exit(f"berth: could not start redis-server on port {port}; is the port taken by something else?")


def venv_command(command: list[str]) -> list[str]:
    """Run console commands with this interpreter and its virtualenv's scripts."""
    if command[0] == "python":
        return [sys.executable, *command[1:]]
    script = Path(sys.executable).parent / command[0]
    return [str(script) if script.exists() else command[0], *command[1:]]


def stop_all(children: list[Child], timeout: float = 15.0) -> None:
    """SIGTERM each child's process group (their own children too), then SIGKILL what is left."""
    running = [c.proc for c in reversed(children) if c.proc is not None and c.proc.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.launcher", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("BERTH_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BERTH_PORT", "8000")))
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    from django.conf import settings

    lock = lock_data_dir(settings.DATA_DIR)  # noqa: F841 (held until the process ends)
    children: list[Child] = []
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        redis_proc = ensure_redis(settings.REDIS_URL, settings.DATA_DIR)
        if redis_proc:
            children.append(Child("redis", list(redis_proc.args), redis_proc))
        for command in processes.PREPARE:
            result = subprocess.run(venv_command(command), cwd=BASE_DIR)
            if result.returncode != 0:
                log(f"'{' '.join(command)}' failed (exit {result.returncode})")
                return 1
        for name, command in (("worker", processes.worker()), ("beat", processes.beat()),
                              ("events", processes.follower()), ("web", processes.web(args.host, args.port))):
            child = Child(name, venv_command(command))
            child.start()
            children.append(child)
        shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        log(f"Berth is up on http://{shown_host}:{args.port}/  (Ctrl-C stops everything)")
        while True:
            now = time.monotonic()
            for child in children:
                child.check(now)
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("stopping…")
        return 0
    finally:
        stop_all(children)
        log("stopped")


if __name__ == "__main__":
    sys.exit(main())
