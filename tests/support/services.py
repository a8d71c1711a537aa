"""A pytest plugin (loaded with ``-p tests.support.services``) that gives the
test session its own Redis and scratch directories before Django loads settings.

A Redis already named in BERTH_REDIS_URL is used as is; otherwise a private
``redis-server`` is started on a free loopback port and stopped at the end.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

_started: list[subprocess.Popen] = []
_scratch = tempfile.mkdtemp(prefix="berth-tests-")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_redis(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("redis-server exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not answer")


def start_redis() -> str:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(server):
        pytest.exit("redis-server is not installed: run scripts/test.sh, which installs it", returncode=2)
    port = free_port()
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", _scratch],
        stdout=subprocess.DEVNULL,
    )
    _started.append(proc)
    _wait_for_redis(port, proc)
    return f"redis://127.0.0.1:{port}/0"


def prepare_engine(config) -> None:
    """The engine's state, as the console's worker creates it at its start."""
    from engine.containers.manager import Containers
    from engine.images.store import ImageStore
    from engine.net.networks import Networks
    from engine.volumes import Volumes

    for store in (ImageStore, Containers, Volumes, Networks):
        store(config)


def _remove_engine_leftovers() -> None:
    """Whatever containers and networks tests left in the session's engine root."""
    root = os.environ.get("BERTH_ENGINE_ROOT", "")
    if not root.startswith(_scratch) or not os.path.isdir(root):
        return
    from engine.config import EngineConfig
    from tests.support.networks import remove_engine

    try:
        remove_engine(EngineConfig.from_env())
    except Exception as exc:  # never hide the test results behind a cleanup error
        print(f"berth tests: cleanup of {root} failed: {exc}")


def _cleanup() -> None:
    _remove_engine_leftovers()
    for proc in _started:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(_scratch, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    os.environ.setdefault("BERTH_DATA_DIR", os.path.join(_scratch, "data"))
    os.environ.setdefault("BERTH_ENGINE_ROOT", os.path.join(_scratch, "engine"))
    os.environ.setdefault("BERTH_ENGINE_RUN", os.path.join(_scratch, "run"))
    # The test registries listen on loopback, which the console reaches only when told to.
    os.environ.setdefault("BERTH_REGISTRY_ALLOWLIST", "127.0.0.1")
    # `python -m engine` in tests runs in its own process (a killed CLI is a killed command;
    # no server outlives a test's scratch root); tests/engine/test_cliserver.py turns it on.
    os.environ["BERTH_ENGINE_CLI_SERVER"] = "0"
    # The session's engine as the console's worker prepares it at its start (Celery's testing
    # worker, a thread, does not send worker_ready).
    from engine.config import EngineConfig

    prepare_engine(EngineConfig.from_env())
    if "BERTH_REDIS_URL" not in os.environ:
        os.environ["BERTH_REDIS_URL"] = start_redis()
    atexit.register(_cleanup)
