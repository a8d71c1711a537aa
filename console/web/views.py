"""Dashboard and the environment switcher."""

from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, Sum
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from console.access.permissions import has_permission, has_role
from console.core.environments import current_environment
from console.core.models import Environment
from console.inventory.models import Container, Image, Volume
from console.operations.models import Operation


def dashboard(request):
    """Counts by state, disk used by images, and the latest operations, all from the mirror."""
    environment = current_environment(request)
    user = request.user
    context = {"engine_facts": has_role(user, environment)}  # its socket answers no one else
    if has_permission(user, "containers.view", environment):
        rows = Container.objects.restrict(user, "containers.view", environment)
        by_state = dict(rows.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
        context["containers"] = {"total": sum(by_state.values()), "by_state": by_state}
    if has_permission(user, "images.view", environment):
        images = Image.objects.restrict(user, "images.view", environment)
        context["images"] = images.aggregate(count=Count("id"), size=Sum("size"))
    if has_permission(user, "volumes.view", environment):
        volumes = Volume.objects.restrict(user, "volumes.view", environment)
        context["volumes"] = volumes.aggregate(count=Count("id"), size=Sum("size"))
    if has_permission(user, "operations.view", environment):
        operations = Operation.objects.restrict(user, "operations.view", environment)
        context["operations"] = operations.order_by("-created_at")[:8]
    return render(request, "core/dashboard.html", context)


@require_POST
def switch_environment(request):
    environment = get_object_or_404(Environment, pk=request.POST.get("environment"))
    request.session["environment_id"] = environment.pk
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)


@login_not_required
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")
