"""Starting an operation: the one path every state-changing action takes.

``start`` checks the permission, records the audit event, creates the
Operation row and enqueues the Celery task once the row is committed. A denied
attempt is audited too, then raises PermissionDenied.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from console import audit
from console.access.permissions import require
from console.operations.models import Operation


def start(*, user, environment, action: str, permission: str, target_type: str = "",
          target_id: str = "", target_name: str = "", parameters: dict | None = None,
          check=None) -> Operation:
    """``check()``: what the action asks for beyond the permission (it raises
    PermissionDenied); a refusal of either is audited the same way."""
    parameters = audit.redact(parameters or {})
    authorize(user=user, environment=environment, action=action, permission=permission,
              target_type=target_type, target_id=target_id, target_name=target_name,
              details=parameters, check=check)
    operation = Operation.objects.create(
        environment=environment, user=user, username=user.get_username(), action=action,
        target_type=target_type, target_id=target_id, target_name=target_name, parameters=parameters,
    )
    audit.record(user=user, action=action, environment=environment, target_type=target_type,
                 target_id=target_id, target_name=target_name, outcome="queued", details=parameters,
                 operation=operation)
    from console.operations.runner import run_operation

    transaction.on_commit(lambda: run_operation.delay(str(operation.pk)))
    return operation


def authorize(*, user, environment, action: str, permission: str, target_type: str = "",
              target_id: str = "", target_name: str = "", details: dict | None = None, check=None) -> None:
    """The permission (and ``check()``) of ``start``, alone: a service calls it before it
    looks at what the request names, so that someone without the permission learns
    nothing from its errors (a name taken, a path missing). Refusals are audited."""
    try:
        require(user, permission, environment, (target_type, target_id) if target_id else None)
        if check is not None:
            check()
    except PermissionDenied:
        audit.record(user=user, action=action, environment=environment, target_type=target_type,
                     target_id=target_id, target_name=target_name, outcome="denied", details=details or {})
        raise


def visible_operations(user, environment):
    """Operations the user may see in ``environment`` (with the owned scope: their own)."""
    from console.access.permissions import restrict

    return restrict(Operation.objects.filter(environment=environment), user, "operations.view", environment)
