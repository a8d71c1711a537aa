"""What a user creates through the console records who may see it: a standard user's
container (and pulled image) is theirs unless they make it public."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.access.models import Assignment, Ownership
from console.access.roles import builtin_role
from console.core.models import Environment
from console.inventory.models import Container
from console.inventory.reconcile import reconcile
from console.operations.models import Operation
from tests.support.worker import wait_for_operation

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="module")
def engine(console_engine):
    return console_engine


def standard_user(django_user_model, name, environment):
    user = django_user_model.objects.create_user(name, password="x" * 12)
    Assignment.objects.create(user=user, role=builtin_role("standard"), environment=environment)
    return user


def test_a_standard_users_container_is_theirs_alone_by_default(client, django_user_model, celery_worker, engine):
    local = Environment.local()
    reconcile(local, "images")
    # Made with the engine, busybox is administrators-only until an administrator publishes it.
    from console.inventory.models import Image

    busybox = Image.objects.get(environment=local, name="test/busybox:latest")
    Ownership.objects.create(environment=local, kind="image", engine_id=busybox.image_id, visibility="public")
    alice = standard_user(django_user_model, "alice", local)
    bob = standard_user(django_user_model, "bob", local)
    client.force_login(alice)
    form = client.get(reverse("container_create")).content.decode()
    assert "Who may see it" in form
    response = client.post(reverse("container_create"), {
        "image": "test/busybox:latest", "name": "owned-by-alice", "command": "sleep 300",
        "network": "private", "restart": "no", "start": "on", "visibility": "restricted"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    op = wait_for_operation(Operation.objects.get(action="container.create"))
    assert op.state == "succeeded", op.error
    row = Container.objects.get(environment=local, name="owned-by-alice")
    ownership = Ownership.objects.get(environment=local, kind="container", engine_id=row.container_id)
    assert ownership.owner == alice

    assert b'data-container="owned-by-alice"' in client.get(reverse("containers")).content
    client.force_login(bob)
    assert b'data-container="owned-by-alice"' not in client.get(reverse("containers")).content
    assert client.get(reverse("container_detail", args=[row.pk])).status_code == 404
