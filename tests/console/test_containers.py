"""Containers through the console: create and start, list, search, detail with logs,
stop, remove, duplicate and recreate, and bad input. A real Celery worker (thread),
real Redis, the real engine with runc."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.access.models import Assignment
from console.access.roles import builtin_role
from console.core.models import Environment
from console.inventory.models import Container
from console.inventory.reconcile import reconcile
from console.operations.models import Operation
from tests.support.access import grant
from tests.support.worker import wait_for_operation

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def local(engine):
    environment = Environment.objects.get(name="local")
    reconcile(environment, "images")
    return environment


def create_through_page(client, **fields):
    data = {"image": "test/busybox:latest", "network": "private", "restart": "no", "start": "on", **fields}
    response = client.post(reverse("container_create"), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    return wait_for_operation(Operation.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[-1]))


def test_create_start_find_read_logs_stop_and_remove(admin_client, celery_worker, local):
    op = create_through_page(admin_client, name="web-1", command="sh -c 'echo hello from web; sleep 300'",
                             env="GREETING=hi", labels="team=blue", memory="64m")
    assert op.state == "succeeded", op.error
    container = Container.objects.get(environment=local, name="web-1")
    assert container.state == "running"
    assert container.labels == {"team": "blue"}

    listing = admin_client.get(reverse("containers"), {"q": "web-1"}).content.decode()
    assert 'data-container="web-1" data-state="running"' in listing
    assert 'data-container="web-1"' in admin_client.get(reverse("containers"), {"label": "team=blue"}).content.decode()
    assert 'data-container="web-1"' not in admin_client.get(reverse("containers"),
                                                              {"label": "team=red"}).content.decode()

    detail = admin_client.get(reverse("container_detail", args=[container.pk])).content.decode()
    assert "hello from web" in detail
    assert "GREETING=hi" in detail and "64.0\xa0MB" in detail

    admin_client.post(reverse("container_bulk"), {"verb": "stop", "container": [container.pk]})
    stop = wait_for_operation(Operation.objects.filter(action="container.stop").latest("created_at"))
    assert stop.state == "succeeded", stop.error
    container.refresh_from_db()
    assert container.state == "exited"

    admin_client.post(reverse("container_action", args=[container.pk, "remove"]))
    remove = wait_for_operation(Operation.objects.filter(action="container.remove").latest("created_at"))
    assert remove.state == "succeeded", remove.error
    assert not Container.objects.filter(pk=container.pk).exists()


def test_duplicate_and_edit_and_recreate(admin_client, celery_worker, local):
    assert create_through_page(admin_client, name="orig", command="sleep 300", labels="v=1").state == "succeeded"
    original = Container.objects.get(environment=local, name="orig")

    form = admin_client.get(reverse("container_create"), {"from": original.pk}).content.decode()
    assert "sleep 300" in form and 'value="test/busybox:latest"' in form
    assert create_through_page(admin_client, name="copy", command="sleep 300").state == "succeeded"

    response = admin_client.post(
        reverse("container_create") + f"?from={original.pk}&replace=1",
        {"image": "test/busybox:latest", "name": "orig", "command": "sleep 301", "labels": "v=2",
         "network": "private", "restart": "no", "start": "on"})
    op = wait_for_operation(Operation.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[-1]))
    assert op.state == "succeeded", op.error
    assert op.action == "container.recreate"
    recreated = Container.objects.get(environment=local, name="orig")
    assert recreated.container_id != original.container_id
    assert recreated.labels == {"v": "2"} and "sleep 301" in recreated.command
    assert Container.objects.filter(environment=local, name="copy").exists()


@pytest.mark.parametrize("field,value,message", [
    ("memory", "12 parsecs", "invalid size"),
    ("env", "FOO", "KEY=value"),
    ("name", "bad/name", "Use letters"),
    ("cpus", "999", "range of CPUs"),
    ("command", "sh -c 'unclosed", "Cannot split"),
    ("network", "host", "Select a valid choice"),
])
def test_bad_input_is_shown_next_to_the_field_and_enqueues_nothing(client, django_user_model, local,
                                                                  field, value, message):
    # A standard user may create containers but not use the host network; the rest is refused for all.
    user = django_user_model.objects.create_user("standard", password="x" * 12)
    grant(user, "standard", local)
    client.force_login(user)
    data = {"image": "test/busybox:latest", "network": "private", "restart": "no", field: value}
    response = client.post(reverse("container_create"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Operation.objects.exists()


def test_name_already_taken_is_refused_before_enqueueing(admin_client, celery_worker, local):
    assert create_through_page(admin_client, name="taken", command="sleep 300").state == "succeeded"
    response = admin_client.post(reverse("container_create"), {"image": "test/busybox:latest", "name": "taken",
                                                               "network": "private", "restart": "no"})
    assert response.status_code == 400
    assert "already in use" in response.content.decode()
    assert Operation.objects.filter(action="container.create").count() == 1


def test_engine_errors_reach_the_operation_in_the_engines_words(admin_client, celery_worker, local):
    op = create_through_page(admin_client, image="no/such-image:1")
    assert op.state == "failed"
    assert "no/such-image" in op.error and "No such image" in op.error


def test_mirror_follows_containers_made_with_the_engine_directly(engine, local):
    container = engine.create("test/busybox:latest", ["sleep", "300"], name="from-cli")
    reconcile(local, "containers")
    row = Container.objects.get(environment=local, name="from-cli")
    assert row.state == "created"
    engine.remove(container.id, force=True)
    reconcile(local, "containers")
    assert not Container.objects.filter(environment=local, name="from-cli").exists()


def test_viewer_sees_the_list_but_may_not_act(client, django_user_model, engine, local):
    engine.create("test/busybox:latest", ["sleep", "300"], name="seen")
    reconcile(local, "containers")
    viewer = django_user_model.objects.create_user("viewer", password="x" * 12)
    # Made with the engine, the container has no owner: read-only users see only what they
    # may through ownership, so the viewer here is Helpdesk (sees all, changes nothing).
    grant(viewer, "helpdesk", local)
    client.force_login(viewer)
    listing = client.get(reverse("containers"))
    assert listing.status_code == 200 and b'data-container="seen"' in listing.content
    row = Container.objects.get(name="seen")
    assert client.post(reverse("container_action", args=[row.pk, "remove"])).status_code == 403
    assert client.get(reverse("container_create")).status_code == 403
    assert not Operation.objects.exists()


def test_dangerous_options_are_checked_in_the_service_and_again_when_the_task_runs(
        admin, admin_client, celery_worker, django_user_model, local):
    from django.core.exceptions import PermissionDenied

    from console.audit.models import AuditEvent
    from console.containers import services

    # An administrator may lift the seccomp filter from the page; inspect says so.
    op = create_through_page(admin_client, name="unfiltered", seccomp_unconfined="on",
                             command="sh -c 'grep Seccomp: /proc/self/status; sleep 300'")
    assert op.state == "succeeded", op.error
    row = Container.objects.get(environment=local, name="unfiltered")
    assert admin_client.get(reverse("container_create") + f"?from={row.pk}").status_code == 200
    from console.drivers import driver_for

    assert driver_for(local).inspect_container(row.container_id)["HostConfig"]["SecurityOpt"] == \
        ["seccomp=unconfined"]
    # A standard user does not see the option, and the service refuses it (audited) whatever
    # calls it.
    user = django_user_model.objects.create_user("std", password="x" * 12)
    grant(user, "standard", local)
    client = admin_client.__class__()
    client.force_login(user)
    assert "seccomp_unconfined" not in client.get(reverse("container_create")).content.decode()
    spec = {"image": "test/busybox:latest", "network": "private", "security_opt": ["seccomp=unconfined"]}
    with pytest.raises(PermissionDenied, match="no seccomp filter"):
        services.create(user, local, spec)
    with pytest.raises(PermissionDenied, match="host paths"):
        services.create(user, local, {"image": "test/busybox:latest", "volumes": ["/etc:/host-etc:ro"]})
    assert AuditEvent.objects.filter(action="container.create", outcome="denied", actor_name="std").count() == 2
    # Asked as an administrator, run after the role was lost: cancelled, nothing created.
    environment_admin = django_user_model.objects.create_user("envadmin", password="x" * 12)
    grant(environment_admin, "environment-admin", local)
    from django.db import transaction

    with transaction.atomic():  # the task is sent on commit: after the role is gone
        operation = services.create(environment_admin, local, dict(spec, name="never"), start=False)
        Assignment.objects.filter(user=environment_admin).update(role=builtin_role("standard"))
    operation = wait_for_operation(operation)
    assert operation.state == "cancelled" and "no seccomp filter" in operation.error
    assert not Container.objects.filter(environment=local, name="never").exists()


def test_a_reconcile_over_a_corrupt_container_record_keeps_its_row(engine, local):
    """The engine cannot read the container's state: it is still there (dead), not gone."""
    container = engine.create("test/busybox:latest", ["sleep", "300"], name="torn-state")
    try:
        reconcile(local, "containers")
        (container.dir / "state.json").write_text("{")
        reconcile(local, "containers")
        row = Container.objects.get(environment=local, container_id=container.id)
        assert (row.name, row.state) == ("torn-state", "dead")
    finally:
        engine.remove(container.id, force=True)
    reconcile(local, "containers")
    assert not Container.objects.filter(environment=local, container_id=container.id).exists()
