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
from console.operations import actions, sealed
from console.operations.models import Operation


def start(*, user, environment, action: str, target_type: str = "",
          target_id: str = "", target_name: str = "", parameters: dict | None = None,
          check=None) -> Operation:
    """``action``: one of console.operations.actions, whose permission is checked.
    ``check()``: what the action asks for beyond the permission (it raises
    PermissionDenied); a refusal of either is audited the same way."""
    given = parameters or {}
    parameters = audit.redact(given)  # what the audit log and the pages show
    authorize(user=user, environment=environment, action=action,
              target_type=target_type, target_id=target_id, target_name=target_name,
              details=parameters, check=check)
    operation = Operation.objects.create(
        environment=environment, user=user, username=user.get_username(), action=action,
        target_type=target_type, target_id=target_id, target_name=target_name,
        parameters=sealed.seal(given, parameters),  # the task gets the real values (sealed.unseal)
    )
    audit.record(user=user, action=action, environment=environment, target_type=target_type,
                 target_id=target_id, target_name=target_name, outcome="queued", details=parameters,
                 operation=operation)
    from console.operations.runner import run_operation

    transaction.on_commit(lambda: run_operation.delay(str(operation.pk)))
    return operation


def authorize(*, user, environment, action: str, target_type: str = "",
              target_id: str = "", target_name: str = "", details: dict | None = None, check=None) -> None:
    """The permission (and ``check()``) of ``start``, alone: a service calls it before it
    looks at what the request names, so that someone without the permission learns
    nothing from its errors (a name taken, a path missing). Refusals are audited."""
    permission = actions.get(action).permission
    try:
        require(user, permission, environment, (target_type, target_id) if target_id else None)
        if check is not None:
            check()
    except PermissionDenied:
        audit.record(user=user, action=action, environment=environment, target_type=target_type,
                     target_id=target_id, target_name=target_name, outcome="denied", details=details or {})
        raise


def cancel(*, user, operation: Operation, request=None) -> Operation:
    """Stop a queued or running operation (pull, push, build, load, export). Whoever may see
    the operation and may do what it does may cancel it. A queued one ends at once; a running
    one is flagged and its task stops at its next chunk, line or layer (see runner.Heartbeat);
    one whose worker is gone ends at once too. Audited, refusals included."""
    from django.utils import timezone

    from console.operations.reaper import is_stale
    from console.operations.runner import publish
    from console.operations.tasks import request_cleanup

    environment = operation.environment
    spec = actions.ACTIONS.get(operation.action)
    resource = (operation.target_type, operation.target_id) if operation.target_id else None
    details = {"action": operation.action}
    target = {"target_type": "operation", "target_id": str(operation.pk),
              "target_name": f"{operation.action} {operation.target_name}".strip()}
    visible = Operation.objects.restrict(user, "operations.view", environment)
    try:
        if spec is None or not visible.filter(pk=operation.pk).exists():
            raise PermissionDenied("You may not cancel this operation.")
        require(user, spec.permission, environment, resource)
    except PermissionDenied:
        audit.record(user=user, action="operation.cancel", environment=environment, outcome="denied",
                     details=details, operation=operation, request=request, **target)
        raise
    operation.refresh_from_db()
    if not operation.cancellable:
        raise ValueError(f"This operation is {operation.state}; only a running or queued "
                         "pull, push, build, import or export can be cancelled.")
    who, now = user.get_username(), timezone.now()
    ended = Operation.objects.filter(pk=operation.pk, state=Operation.State.QUEUED).update(
        state=Operation.State.CANCELLED, error=f"Cancelled by {who}.", finished_at=now,
        cancel_requested_at=now, cancel_requested_by=who)
    if not ended:
        Operation.objects.filter(pk=operation.pk, state=Operation.State.RUNNING).update(
            cancel_requested_at=now, cancel_requested_by=who)
        operation.refresh_from_db()
        if operation.state == Operation.State.RUNNING and is_stale(operation):
            # Nobody runs it any more: nobody else will end it.
            if Operation.objects.filter(pk=operation.pk, state=Operation.State.RUNNING).update(
                    state=Operation.State.CANCELLED, error=f"Cancelled by {who} (its worker had stopped).",
                    finished_at=now):
                request_cleanup(environment)
    audit.record(user=user, action="operation.cancel", environment=environment, outcome="succeeded",
                 details={**details, "was": operation.state}, operation=operation, request=request, **target)
    operation.refresh_from_db()
    publish(operation, {"kind": "state"})
    return operation
