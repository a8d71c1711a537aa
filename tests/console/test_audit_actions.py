"""Real actions through the pages leave exactly one audit event each, with the right
fields; a refused one leaves a denied event. A real Celery worker runs the operation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.audit import chain
from console.audit.models import AuditEvent
from console.core.models import Environment
from console.operations.models import Operation
from tests.support.worker import wait_for_operation

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_an_operation_leaves_one_queued_event_linked_to_its_result(admin_client, admin, celery_worker):
    local = Environment.objects.get(name="local")
    before = AuditEvent.objects.count()
    response = admin_client.post(reverse("image_prune"), {"all": "on"}, HTTP_USER_AGENT="pytest/1",
                                 REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 302
    operation = wait_for_operation(Operation.objects.get(action="image.prune"))
    assert operation.state == "succeeded", operation.error
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert len(events) == 1  # the worker adds none: the result is on the Operation
    event = events[0]
    assert (event.action, event.outcome, event.actor_id, event.actor_name) == ("image.prune", "queued", admin.pk, "admin")
    assert (event.environment_id, event.environment_name) == (local.pk, "local")
    assert (event.target_type, event.target_name, event.details) == ("image", "all unused", {"all": True})
    assert event.operation_id == operation.pk
    assert event.request_id == response["X-Request-ID"]
    assert (event.source_ip, event.user_agent) == ("192.0.2.10", "pytest/1")
    assert chain.verify().ok
    # The list shows the operation's result next to the event.
    html = admin_client.get(reverse("audit"), {"action": "image.prune"}).content.decode()
    assert f'data-event="{event.pk}"' in html and "succeeded</span>" in html


def test_a_refused_operation_leaves_one_denied_event(client, django_user_model, celery_worker):
    viewer = django_user_model.objects.create_user("viewer", password="x" * 12)
    client.force_login(viewer)
    before = AuditEvent.objects.count()
    response = client.post(reverse("image_prune"), {"all": "on"})
    assert response.status_code == 403
    assert not Operation.objects.exists()
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [(e.action, e.outcome, e.actor_name, e.operation_id) for e in events] == [
        ("image.prune", "denied", "viewer", None)]
