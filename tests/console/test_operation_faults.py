"""Operations under faults: a worker killed with SIGKILL mid-pull leaves an operation that
the reaper marks failed (and its partial download is given back); a user cancels a slow
pull from its page and it ends promptly as cancelled with nothing half-written.

A real Celery worker process on the test database, the real engine, Debian's
docker-registry behind a throttling proxy on loopback.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from console.access.roles import grant
from console.audit.models import AuditEvent
from console.core.models import Environment
from console.operations import reaper
from console.operations.models import Operation
from console.operations.tasks import reap_operations
from engine.config import EngineConfig
from engine.distribution import transfer as distribution
from engine.images.store import ImageStore
from tests.support.imagebuilder import build_image, file
from tests.support.slowproxy import slow_proxy
from tests.support.worker import WorkerProcess, wait_for_operation, wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

LAYER_BYTES = 24 << 20
RATE = 2 << 20  # bytes per second through the proxy: the pull takes about 12 s
FAST_REAPER = {"BERTH_OPERATION_HEARTBEAT_SECONDS": "0.2", "BERTH_OPERATION_STALE_SECONDS": "2",
               "BERTH_INGEST_GRACE_SECONDS": "0"}


@pytest.fixture(scope="module")
def big_image(open_registry, tmp_path_factory):
    """An image with one large, incompressible layer, in the registry."""
    source = ImageStore(EngineConfig(root=tmp_path_factory.mktemp("source"), run_root=Path("/tmp")))
    built = build_image([[file("blob", os.urandom(LAYER_BYTES))]], compression=None)
    built.register(source, "test/big:latest")
    distribution.push(source, "test/big:latest", f"{open_registry.host}/team/big:1.0")
    return "team/big:1.0"


@pytest.fixture
def slow_ref(open_registry, big_image):
    with slow_proxy(open_registry.host, RATE) as host:
        yield f"{host}/{big_image}"


@pytest.fixture
def local(console_engine):
    return Environment.local()


@pytest.fixture
def workers(tmp_path):
    """Start worker processes on a queue of this test's own; all stopped at the end."""
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    started = []

    def start(name="faults", env=None):
        worker = WorkerProcess(name, queue, tmp_path / "worker.log", env={**FAST_REAPER, **(env or {})})
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def ingest_parts() -> list[Path]:
    return list((Path(settings.ENGINE_ROOT) / "content" / "ingest").glob("*.part"))


def new_pull(environment, user, reference) -> Operation:
    return Operation.objects.create(environment=environment, user=user, username=user.username,
                                    action="image.pull", target_type="image", target_name=reference,
                                    parameters={"reference": reference})


def downloading(operation) -> bool:
    operation.refresh_from_db()
    return any((layer.get("current") or 0) > 0 and layer.get("status") == "Downloading"
               for layer in operation.progress.get("layers", {}).values())


def test_a_worker_killed_mid_pull_leaves_an_operation_the_reaper_fails(admin, local, workers, slow_ref):
    worker = workers()
    operation = new_pull(local, admin, slow_ref)
    worker.run(operation)
    wait_until(lambda: downloading(operation), timeout=60, what="the download")
    assert ingest_parts(), "a partial download is being written"

    worker.kill(signal.SIGKILL)
    operation.refresh_from_db()
    assert operation.state == "running"  # nobody is left to say otherwise...

    workers()  # ...until a worker starts again: its reaper fails it and cleans what it left
    operation = wait_for_operation(operation, timeout=30)
    assert operation.state == "failed"
    assert operation.error == "interrupted: the worker stopped"
    wait_until(lambda: not ingest_parts(), what="the clean-up of the partial download")
    assert not ImageStore(EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT))
                          ).exists(slow_ref)


def test_the_scheduled_reaper_fails_only_operations_whose_heartbeat_is_stale(admin, local, settings):
    settings.BERTH_OPERATION_STALE_SECONDS = 60
    now = timezone.now()
    dead = new_pull(local, admin, "dead")
    alive = new_pull(local, admin, "alive")
    Operation.objects.filter(pk=dead.pk).update(state="running", started_at=now - dt.timedelta(minutes=5),
                                                heartbeat_at=now - dt.timedelta(minutes=2), worker="gone@host")
    Operation.objects.filter(pk=alive.pk).update(state="running", started_at=now - dt.timedelta(minutes=5),
                                                 heartbeat_at=now, worker="busy@host")
    result = reap_operations()
    assert result["reaped"] == [str(dead.pk)]
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.state, dead.error) == ("failed", reaper.INTERRUPTED)
    assert dead.finished_at is not None
    assert alive.state == "running"


def test_a_slow_pull_cancelled_from_its_page_ends_promptly_with_nothing_left(
        admin, admin_client, local, workers, slow_ref):
    worker = workers()
    operation = new_pull(local, admin, slow_ref)
    worker.run(operation)
    wait_until(lambda: downloading(operation), timeout=60, what="the download")

    first_beat = operation.heartbeat_at
    assert operation.worker == worker.name
    wait_until(lambda: Operation.objects.get(pk=operation.pk).heartbeat_at > first_beat, what="a heartbeat")

    page = admin_client.get(reverse("operation_detail", args=[operation.pk])).content.decode()
    assert 'data-testid="cancel-operation"' in page
    asked = time.monotonic()
    response = admin_client.post(reverse("operation_cancel", args=[operation.pk]))
    assert response.status_code == 302
    operation = wait_for_operation(operation, timeout=30)
    took = time.monotonic() - asked
    assert operation.state == "cancelled"
    assert operation.error == "Cancelled by admin."
    assert took < 5, f"the cancel took {took:.1f}s"  # the whole pull would take about 12 s
    assert not ingest_parts()
    assert not ImageStore(EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT))
                          ).exists(slow_ref)
    event = AuditEvent.objects.get(action="operation.cancel")
    assert (event.outcome, event.operation_id, event.actor_name) == ("succeeded", operation.pk, "admin")
    # finished: no cancel button any more, and a second cancel says why not
    assert 'data-testid="cancel-operation"' not in admin_client.get(
        reverse("operation_detail", args=[operation.pk])).content.decode()
    again = admin_client.post(reverse("operation_cancel", args=[operation.pk]), follow=True)
    assert "only a running or queued" in again.content.decode()


def test_a_queued_operation_cancelled_from_the_list_never_runs(admin, admin_client, local):
    operation = new_pull(local, admin, "registry.invalid/never:1")
    rows = admin_client.get(reverse("operations")).content.decode()
    assert reverse("operation_cancel", args=[operation.pk]) in rows
    response = admin_client.post(reverse("operation_cancel", args=[operation.pk]),
                                 {"next": reverse("operations") + "?state=queued"})
    assert response["Location"] == reverse("operations") + "?state=queued"
    operation.refresh_from_db()
    assert (operation.state, operation.error) == ("cancelled", "Cancelled by admin.")
    from console.operations.runner import run_operation

    assert run_operation(str(operation.pk)) == "cancelled"  # its message, delivered late, does nothing


def test_cancelling_needs_the_right_to_do_what_the_operation_does(client, admin, local, django_user_model):
    operation = new_pull(local, admin, "registry.invalid/theirs:1")
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-1")
    grant(viewer, "helpdesk", local)  # sees every operation, may not pull
    client.force_login(viewer)
    assert reverse("operation_cancel", args=[operation.pk]) not in client.get(
        reverse("operation_detail", args=[operation.pk])).content.decode()
    assert client.post(reverse("operation_cancel", args=[operation.pk])).status_code == 403
    operation.refresh_from_db()
    assert operation.state == "queued" and not operation.cancel_requested_at
    event = AuditEvent.objects.get(action="operation.cancel")
    assert (event.outcome, event.actor_name) == ("denied", "viewer")


def test_a_running_operation_whose_worker_is_gone_is_cancelled_at_once(admin, admin_client, local, settings):
    settings.BERTH_OPERATION_STALE_SECONDS = 60
    operation = new_pull(local, admin, "registry.invalid/stuck:1")
    Operation.objects.filter(pk=operation.pk).update(
        state="running", started_at=timezone.now() - dt.timedelta(hours=1),
        heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    admin_client.post(reverse("operation_cancel", args=[operation.pk]))
    operation.refresh_from_db()
    assert operation.state == "cancelled"
    assert "its worker had stopped" in operation.error


def test_a_build_cancelled_while_a_step_runs_stops_at_its_next_line(admin, admin_client, local, workers,
                                                                     tmp_path):
    from engine.build.builder import BUILD_LABEL
    from engine.containers.manager import Containers

    work = tmp_path / "build"
    (work / "context").mkdir(parents=True)
    (work / "Dockerfile").write_text(
        "FROM test/busybox:latest\n"
        "RUN i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); sleep 0.1; done\n")
    operation = Operation.objects.create(
        environment=local, user=admin, username="admin", action="image.build", target_type="image",
        target_name="test/cancelled:1", parameters={"work": str(work), "context": str(work / "context"),
                                                    "dockerfile": str(work / "Dockerfile"),
                                                    "tags": ["test/cancelled:1"], "no_cache": True})
    workers().run(operation)
    wait_until(lambda: "line 3" in Operation.objects.get(pk=operation.pk).progress.get("lines", []),
               timeout=60, what="the RUN step's output")
    asked = time.monotonic()
    admin_client.post(reverse("operation_cancel", args=[operation.pk]))
    operation = wait_for_operation(operation, timeout=30)
    assert operation.state == "cancelled", operation.error
    assert time.monotonic() - asked < 5  # the step alone would run for 30 s
    assert operation.error == "Cancelled by admin."
    config = EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT))
    assert not ImageStore(config).exists("test/cancelled:1")
    wait_until(lambda: not [c for c in Containers(config).list(all=True) if BUILD_LABEL in (c.get("Labels") or {})],
               what="the removal of the step's container")
    assert not work.exists()


def test_the_scheduled_clean_up_gives_back_old_partial_downloads_that_no_writer_holds(local, settings):
    import fcntl

    from console.operations.tasks import clean_leftovers

    settings.BERTH_INGEST_GRACE_SECONDS = 600
    ingest = Path(settings.ENGINE_ROOT) / "content" / "ingest"
    old, young, held = (ingest / f"blob-{name}.part" for name in ("old", "young", "held"))
    for path in (old, young, held):
        path.write_bytes(b"x" * 1000)
    an_hour_ago = time.time() - 3600
    for path in (old, held):
        os.utime(path, (an_hour_ago, an_hour_ago))
    with open(held, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)  # a live pull still writing it
        clean_leftovers()
    assert not old.exists()
    assert young.exists() and held.exists()
    young.unlink()
    held.unlink()
