"""Operations pages: the list, one operation with its live progress, and cancel."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from console.access.permissions import has_permission
from console.core.environments import current_environment
from console.operations import services
from console.operations.models import Operation

PAGE_SIZE = 50


def _visible(request):
    environment = current_environment(request)
    return Operation.objects.restrict(request.user, "operations.view", environment)


def may_cancel(user, operation) -> bool:
    """Whether to offer the cancel button (services.cancel checks again)."""
    from console.operations.actions import ACTIONS

    spec = ACTIONS.get(operation.action)
    resource = (operation.target_type, operation.target_id) if operation.target_id else None
    return (operation.cancellable and spec is not None
            and has_permission(user, spec.permission, operation.environment, resource))


def operation_list(request):
    operations = _visible(request).select_related("environment")
    state = request.GET.get("state", "")
    if state in Operation.State.values:
        operations = operations.filter(state=state)
    action = request.GET.get("action", "").strip()
    if action:
        operations = operations.filter(action__startswith=action)
    page = Paginator(operations.order_by("-created_at"), PAGE_SIZE).get_page(request.GET.get("page"))
    for op in page:
        op.can_cancel = may_cancel(request.user, op)
    context = {"page": page, "state": state, "action": action, "states": Operation.State.values,
               "live": any(not op.finished for op in page)}
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "operation-rows":
        return render(request, "operations/_rows.html", context)
    return render(request, "operations/list.html", context)


def operation_detail(request, pk):
    operation = get_object_or_404(_visible(request), pk=pk)
    operation.can_cancel = may_cancel(request.user, operation)
    return render(request, "operations/detail.html", {"operation": operation})


@require_POST
def operation_cancel(request, pk):
    operation = get_object_or_404(_visible(request).select_related("environment"), pk=pk)
    try:
        services.cancel(user=request.user, operation=operation, request=request)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Cancelling {operation.action} {operation.target_name}.".replace(" .", "."))
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("operation_detail", operation.pk)
