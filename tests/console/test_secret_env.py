"""Secret-looking environment values reach the container as given; only the audit copy and
the operation's shown parameters are redacted, and the database holds them encrypted (issue 12)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.audit.models import AuditEvent
from console.core.models import Environment
from console.inventory.reconcile import reconcile
from console.operations import sealed
from console.operations.models import Operation
from tests.console.test_registries import assert_secret_nowhere_in_the_database
from tests.support.worker import wait_for_operation

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
SECRET = "s3cret-value-4271"


@pytest.fixture
def local(engine):
    environment = Environment.objects.get(name="local")
    reconcile(environment, "images")
    return environment


def test_the_container_gets_the_real_value_and_the_records_do_not(admin_client, celery_worker, engine, local):
    response = admin_client.post(reverse("container_create"), {
        "image": "test/busybox:latest", "name": "secret-env", "network": "none", "restart": "no",
        "command": "true", "env": f"DB_PASSWORD={SECRET}\nPORT=80"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    operation = wait_for_operation(Operation.objects.get(action="container.create"))
    assert operation.state == "succeeded", operation.error
    try:
        env = engine.get("secret-env").config["Config"]["Env"]
        assert f"DB_PASSWORD={SECRET}" in env and "PORT=80" in env
        shown = operation.parameters["spec"]["env"]
        assert shown == ["DB_PASSWORD=[redacted]", "PORT=80"]
        assert sealed.KEY not in operation.parameters  # finished: the encrypted copy is gone too
        event = AuditEvent.objects.get(action="container.create", outcome="queued")
        assert event.details["spec"]["env"] == ["DB_PASSWORD=[redacted]", "PORT=80"]
        assert sealed.KEY not in event.details
        page = admin_client.get(reverse("operation_detail", args=[operation.pk])).content.decode()
        assert SECRET not in page
        assert_secret_nowhere_in_the_database(SECRET)
    finally:
        engine.remove("secret-env", force=True)


def test_sealing_round_trip_and_nothing_sealed_without_secrets():
    plain = {"spec": {"env": ["PORT=80"]}, "start": True}
    assert sealed.seal(plain) == plain
    secret = {"spec": {"env": [f"API_TOKEN={SECRET}"]}, "password": SECRET}
    stored = sealed.seal(secret)
    assert SECRET not in repr(stored) and stored["password"] == "[redacted]"
    assert sealed.unseal(stored) == secret
    assert sealed.unseal(plain) == plain
