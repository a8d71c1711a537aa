"""A real Celery worker for console tests, consuming from the test Redis.

It runs in a thread of the test process (Celery's own testing worker) so that
it shares the test database; the browser tests use a separate worker process.
"""

from __future__ import annotations

import time

import pytest

from console import celery_app


@pytest.fixture(scope="session")
def celery_worker():
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_app, pool="solo", concurrency=1, perform_ping_check=False,
                      shutdown_timeout=30, loglevel="WARNING") as worker:
        yield worker


def wait_for_operation(operation, timeout: float = 60.0):
    """Poll until the operation has finished; return it fresh from the database."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation.refresh_from_db()
        if operation.finished:
            return operation
        time.sleep(0.1)
    raise AssertionError(f"operation {operation.action} still {operation.state} after {timeout}s")


def wait_until(condition, timeout: float = 30.0, what: str = "the condition"):
    """Poll ``condition()`` until it is true (something another process or thread does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


async def async_wait_until(condition, timeout: float = 30.0, what: str = "the condition"):
    """``wait_until`` for async tests: ``condition`` is a coroutine function (for instance a
    query wrapped in ``database_sync_to_async``)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


class WorkerProcess:
    """A Celery worker in its own process (``celery -A console worker``, solo pool) on the
    test database, consuming only ``queue``: a worker that can be killed for real."""

    def __init__(self, name: str, queue: str, log_path, env: dict | None = None):
        import os
        import socket
        import subprocess
        import sys
        from pathlib import Path

        from django.db import connection

        self.name = f"{name}@{socket.gethostname()}"
        self.queue = queue
        self.log_path = Path(log_path)
        environ = {**os.environ, "BERTH_DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
                   **(env or {})}
        self.log = open(self.log_path, "ab")
        start = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "console", "worker", "-P", "solo", "-n", self.name,
             "-Q", queue, "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=Path(__file__).resolve().parents[2], env=environ, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b" ready." not in self.log_path.read_bytes()[start:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def run(self, operation) -> None:
        from console.operations.runner import run_operation

        run_operation.apply_async(args=[str(operation.pk)], queue=self.queue)

    def kill(self, sig) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
