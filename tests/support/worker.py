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
