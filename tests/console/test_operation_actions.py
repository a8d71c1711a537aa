"""Each action's permission, tables to reconcile, what it creates and whether it can be
cancelled are declared once (console.operations.actions); services and handlers read them."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from console.access.roles import grant
from console.core.models import Environment
from console.operations import actions, runner, services
from console.operations.models import Operation

pytestmark = pytest.mark.django_db


def test_every_handler_has_its_action_declared_and_every_action_a_handler():
    import console.containers.operations  # noqa: F401  (the handlers register on import)
    import console.images.operations  # noqa: F401
    import console.networks.operations  # noqa: F401
    import console.registries.operations  # noqa: F401
    import console.volumes.operations  # noqa: F401

    assert set(runner.HANDLERS) == set(actions.ACTIONS)


def test_a_handler_for_an_undeclared_action_is_refused_at_import():
    with pytest.raises(LookupError, match="Unknown action 'image.frobnicate'"):
        runner.handler("image.frobnicate")


def test_the_service_checks_the_declared_permission(django_user_model, django_capture_on_commit_callbacks):
    local = Environment.local()
    viewer = django_user_model.objects.create_user("viewer")
    grant(viewer, "read-only", local)
    assert actions.get("volume.create").permission == "volumes.create"
    with pytest.raises(PermissionDenied):
        services.start(user=viewer, environment=local, action="volume.create", target_type="volume",
                       target_name="data", parameters={"name": "data"})
    assert not Operation.objects.exists()
    with pytest.raises(LookupError):  # an action no one declared is not started at all
        services.start(user=viewer, environment=local, action="volume.frobnicate")


def test_cancellable_is_the_actions():
    local = Environment.local()
    pull = Operation(environment=local, action="image.pull", state=Operation.State.RUNNING)
    remove = Operation(environment=local, action="image.remove", state=Operation.State.RUNNING)
    assert (pull.cancellable, remove.cancellable) == (True, False)
