"""Start all of Berth in the foreground: ``python -m console.launcher``.

It checks Redis (and starts a private one when none is running on the local
default address), prepares the database, then runs the Celery worker and beat
and daphne until Ctrl-C, which stops them all. Running it again is safe.
"""

from __future__ import annotations

import argparse
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
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(redis_dir),
         "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, start_new_session=True,
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


def stop_all(children: list[subprocess.Popen], timeout: float = 15.0) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.launcher", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("BERTH_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BERTH_PORT", "8000")))
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    from django.conf import settings

    children: list[subprocess.Popen] = []
    redis_proc = ensure_redis(settings.REDIS_URL, settings.DATA_DIR)
    if redis_proc:
        children.append(redis_proc)
    try:
        for command in processes.PREPARE:
            result = subprocess.run(venv_command(command), cwd=BASE_DIR)
            if result.returncode != 0:
                log(f"'{' '.join(command)}' failed (exit {result.returncode})")
                return 1
        for name, command in (("worker", processes.worker()), ("beat", processes.beat()),
                              ("events", processes.follower()), ("web", processes.web(args.host, args.port))):
            log(f"starting {name}: {' '.join(command)}")
            children.append(subprocess.Popen(venv_command(command), cwd=BASE_DIR, start_new_session=True))
        shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        log(f"Berth is up on http://{shown_host}:{args.port}/  (Ctrl-C stops everything)")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        while True:
            for child in children:
                if child.poll() is not None:
                    log(f"'{' '.join(child.args)}' exited with {child.returncode}; stopping Berth")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("stopping…")
        return 0
    finally:
        stop_all(children)
        log("stopped")


if __name__ == "__main__":
    sys.exit(main())
