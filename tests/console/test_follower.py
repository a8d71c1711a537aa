"""The events follower reconciles the mirror after changes made outside the console."""

import threading
from pathlib import Path

import pytest
from django.conf import settings

from console.core.models import Environment
from console.inventory.models import Container
from engine.config import EngineConfig
from engine.containers.manager import Containers
from engine.images.store import ImageStore
from tests.support.imagebuilder import busybox_image
from tests.support.inventory import live_follower
from tests.support.worker import wait_until

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.root]


def test_a_container_made_and_removed_with_the_engine_shows_up_and_goes():
    config = EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT))
    images = ImageStore(config)
    if not images.exists("test/busybox:latest"):
        busybox_image(images, ref="test/busybox:latest")
    engine = Containers(config)
    local = Environment.objects.get(name="local")
    stop = threading.Event()
    follower = live_follower(local, stop)
    try:
        container = engine.create("test/busybox:latest", ["sleep", "300"], name="followed")
        engine.start(container.id)
        wait_until(lambda: Container.objects.filter(name="followed", state="running").exists())
        engine.stop(container.id, timeout=1)
        wait_until(lambda: Container.objects.filter(name="followed", state="exited").exists())
        engine.remove(container.id)
        wait_until(lambda: not Container.objects.filter(name="followed").exists())
    finally:
        stop.set()
        follower.join(timeout=10)
        for summary in engine.list(all=True, filters={"name": ["followed"]}):
            engine.remove(summary["Id"], force=True)
