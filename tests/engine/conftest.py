"""Fixtures shared by the engine's tests."""

from __future__ import annotations

import pytest

from tests.support.containers import cleanup, make_engine


@pytest.fixture
def engine():
    """A container store on a fresh engine root with ``test/busybox:latest``; everything the
    test made (containers, monitors, mounts, networks, the root) is removed afterwards. A
    module that needs another engine defines its own ``engine``."""
    eng, _ = make_engine()
    yield eng
    cleanup(eng)
