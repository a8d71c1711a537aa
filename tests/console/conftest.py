"""Fixtures shared by the console's tests: the console's engine as a container store, and a
running container (with its inventory row) for the live sockets."""

from __future__ import annotations

import pytest

from console.core.models import Environment
from console.inventory.models import Container
from console.inventory.reconcile import reconcile
from engine.containers.manager import Containers


@pytest.fixture(scope="module")
def engine(console_engine):
    """The container store of the engine the console drives (``console_engine``)."""
    return Containers(console_engine)


@pytest.fixture(scope="module")
def sleeper(engine):
    """A busybox container that sleeps for the module's tests (a terminal can open on it)."""
    container, _ = engine.run("test/busybox:latest", ["sleep", "3600"], name="live-term")
    yield container
    engine.remove(container.id, force=True)


@pytest.fixture
def row(sleeper):
    """The sleeper's row in the console's inventory of the ``local`` environment."""
    environment = Environment.objects.get(name="local")
    reconcile(environment, "containers")
    return Container.objects.get(environment=environment, container_id=sleeper.id)


@pytest.fixture
def fake_engine(monkeypatch):
    """The ``local`` environment's driver answers from memory: fill the returned
    ``tests.support.fakedriver.FakeEngine`` with what the engine reports (no engine, no root)."""
    from console import drivers
    from tests.support.fakedriver import FakeEngine, fake_driver_class

    engine = FakeEngine()
    monkeypatch.setitem(drivers.DRIVERS, "local", fake_driver_class(engine))
    return engine
