"""An operation that meets a full disk ends with one line saying so, not 'Internal error'."""

from __future__ import annotations

import errno

import pytest

from console.core.models import Environment
from console.operations import actions, runner, services
from console.operations.models import Operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def full_disk_action():
    actions.declare(actions.Action("test.full_disk", "images.pull"))

    @runner.handler("test.full_disk")
    def fill(ctx):
        raise OSError(errno.ENOSPC, "No space left on device", "/somewhere/ingest/x.part")

    yield "test.full_disk"
    runner.HANDLERS.pop("test.full_disk")
    actions.ACTIONS.pop("test.full_disk")


def test_a_full_disk_is_one_clear_line(admin, full_disk_action, django_capture_on_commit_callbacks):
    environment = Environment.objects.get(name="local")
    with django_capture_on_commit_callbacks(execute=False):  # run it here, not through the broker
        operation = services.start(user=admin, environment=environment, action=full_disk_action)
    runner.run_operation.apply(args=[str(operation.pk)])
    operation.refresh_from_db()
    assert operation.state == Operation.State.FAILED
    assert operation.error.startswith("no space left on "), operation.error
    assert "Internal error" not in operation.error and "Errno" not in operation.error
