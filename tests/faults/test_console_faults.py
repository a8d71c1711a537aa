"""The console under the engine's faults: a container whose monitor was killed shows as
unsupervised (list and detail page); the beat runs the garbage collector and the
dashboard shows the space a prune would give back."""

from __future__ import annotations

import os
import signal

import pytest
from django.urls import reverse

from console.core.models import Environment
from console.inventory.models import Container
from console.inventory.reconcile import reconcile
from engine.containers.manager import Containers
from tests.support.containers import wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_list_and_detail_say_unsupervised(admin_client, console_engine):
    engine = Containers(console_engine)
    local = Environment.objects.get(name="local")
    c, _ = engine.run("test/busybox:latest", ["sleep", "300"], name="orphaned")
    try:
        os.kill(engine.get(c.id).state["MonitorPid"], signal.SIGKILL)
        wait_for(lambda: engine.unsupervised(engine.get(c.id)))
        reconcile(local, "containers")
        row = Container.objects.get(environment=local, name="orphaned")
        assert row.state == "running" and row.status.endswith("(unsupervised)")
        listing = admin_client.get(reverse("containers")).content.decode()
        assert "(unsupervised)" in listing
        detail = admin_client.get(reverse("container_detail", args=[row.pk])).content.decode()
        assert 'data-testid="container-unsupervised"' in detail
        assert "monitor died" in detail
    finally:
        engine.remove(c.id, force=True)


def test_beat_collects_garbage_and_the_dashboard_shows_reclaimable_space(admin_client, console_engine):
    from django.template.loader import render_to_string

    from console.drivers import driver_for
    from console.operations.tasks import clean_leftovers

    trash = console_engine.root / "snapshots" / ".trash-beefcafe-x"
    (trash / "snapshot").mkdir(parents=True)
    local = Environment.objects.get(name="local")
    summary = clean_leftovers()
    assert summary["local"]["trash"] >= 1 and not trash.exists()
    facts = driver_for(local).facts()
    assert facts["reclaimable_bytes"] >= 0
    html = render_to_string("core/_engine_facts.html", {"state": "fresh", "facts": {**facts, "reclaimable_bytes": 5_000_000}})
    assert 'data-fact="reclaimable"' in html and "4.8" in html
