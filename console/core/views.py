"""Dashboard, placeholder pages and the environment switcher."""

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from console.core.models import Environment
from console.core.navigation import MENU


def dashboard(request):
    return render(request, "core/dashboard.html")


def not_built(request, url_name: str):
    item = next((m for m in MENU if m.url_name == url_name), None)
    if item is None:
        raise Http404
    return render(request, "core/not_built.html", {"page_title": item.label})


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
