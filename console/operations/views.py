"""Operations pages: the list, and one operation with its live progress."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from console.access.permissions import restrict
from console.core.environments import current_environment
from console.operations.models import Operation
from console.operations.services import visible_operations

PAGE_SIZE = 50


def operation_list(request):
    environment = current_environment(request)
    operations = restrict(visible_operations(request.user, environment), request.user, "operations.view",
                          environment).select_related("environment")
    state = request.GET.get("state", "")
    if state in Operation.State.values:
        operations = operations.filter(state=state)
    action = request.GET.get("action", "").strip()
    if action:
        operations = operations.filter(action__startswith=action)
    page = Paginator(operations.order_by("-created_at"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "state": state, "action": action, "states": Operation.State.values,
               "live": any(not op.finished for op in page)}
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "operation-rows":
        return render(request, "operations/_rows.html", context)
    return render(request, "operations/list.html", context)


def operation_detail(request, pk):
    environment = current_environment(request)
    operation = get_object_or_404(
        restrict(visible_operations(request.user, environment), request.user, "operations.view", environment),
        pk=pk)
    return render(request, "operations/detail.html", {"operation": operation})
