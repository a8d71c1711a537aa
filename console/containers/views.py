"""Containers pages: list with search, filters, sorting and bulk actions; detail;
create, duplicate, and edit-and-recreate."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console.access.permissions import can_use_dangerous_options, has_permission, require
from console.accounts.forms import access_parameters, add_access_fields
from console.containers import services
from console.containers.forms import ContainerForm, initial_from_inspect
from console.core.environments import current_environment
from console.drivers import driver_for
from console.inventory.models import Container, Image, Network
from console.web.pages import inspect_or_gone, label_filter, row_ids, visible_rows
from engine.errors import EngineError

PAGE_SIZE = 50
SORTS = {"name": ("name",), "-created": ("-created", "name"), "created": ("created", "name"),
         "state": ("state", "name"), "image": ("image", "name")}
BULK_VERBS = ("start", "stop", "restart", "kill", "remove")


def _visible_containers(request):
    """The containers of the current environment this user may see (others are a 404)."""
    return visible_rows(request, Container, "containers")


def _filter(containers, params):
    query = params.get("q", "").strip().lower()
    if query:
        containers = containers.filter(search_text__contains=query)
    state = params.get("state", "")
    if state in Container.State.values:
        containers = containers.filter(state=state)
    label = params.get("label", "").strip()
    if label:
        containers = label_filter(containers, label)
    image = params.get("image", "").strip()
    if image:
        containers = containers.filter(Q(image__icontains=image) | Q(image_id__startswith=image))
    return containers


def _permissions(user, environment) -> dict:
    return {f"can_{name.split('.')[1]}": has_permission(user, name, environment)
            for name in ("containers.create", "containers.operate", "containers.remove", "containers.recreate")}


def container_list(request):
    environment, containers = _visible_containers(request)
    containers = _filter(containers, request.GET)
    sort = request.GET.get("sort", "name")
    page = Paginator(containers.order_by(*SORTS.get(sort, SORTS["name"])), PAGE_SIZE).get_page(
        request.GET.get("page"))
    context = {"page": page, "sort": sort, "params": request.GET, "states": Container.State.values,
               "bulk_verbs": BULK_VERBS, **_permissions(request.user, environment)}
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "container-rows":
        return render(request, "containers/_rows.html", context)
    return render(request, "containers/list.html", context)


def container_detail(request, pk):
    environment, containers = _visible_containers(request)
    container = get_object_or_404(containers, pk=pk)
    driver = driver_for(environment)
    inspect = inspect_or_gone(request, environment, "containers", f"Container {container.name}",
                              lambda: driver.inspect_container(container.container_id))
    if inspect is None:
        return redirect("containers")
    logs = []
    if has_permission(request.user, "containers.logs", environment):
        try:
            logs = driver.container_logs(container.container_id, tail=200)
        except EngineError as exc:
            messages.error(request, f"Logs unavailable: {exc}")
    context = {"container": container, "inspect": inspect, "logs": logs,
               "can_logs": has_permission(request.user, "containers.logs", environment),
               **_permissions(request.user, environment)}
    return render(request, "containers/detail.html", context)


def container_create(request):
    environment = current_environment(request)
    require(request.user, "containers.create", environment)
    source = None
    initial = {}
    if request.GET.get("from"):
        source = get_object_or_404(Container.objects.restrict(request.user, "containers.view", environment),
                                   pk=request.GET["from"])
        inspect = inspect_or_gone(request, environment, "containers", f"Container {source.name}",
                                  lambda: driver_for(environment).inspect_container(source.container_id))
        if inspect is None:
            return redirect("containers")
        initial = initial_from_inspect(inspect)
        if request.GET.get("replace") != "1":
            initial["name"] = ""  # a duplicate needs a name of its own
    replace = source if source is not None and request.GET.get("replace") == "1" else None
    allow_host = can_use_dangerous_options(request.user, environment)
    networks = Network.objects.restrict(request.user, "networks.view", environment) \
        .filter(builtin=False).order_by("name").values_list("name", flat=True)
    form = ContainerForm(request.POST or None, initial=initial, allow_host_network=allow_host,
                         networks=list(networks))
    if replace is None:  # a recreated container keeps the ownership of the one it replaces
        add_access_fields(form, request.user, environment)
    if request.method == "POST" and form.is_valid():
        try:
            operation = services.create(request.user, environment, form.spec(),
                                        start=form.cleaned_data["start"], replace=replace,
                                        access=access_parameters(form.cleaned_data) if replace is None else None)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("operation_detail", operation.pk)
    images = Image.objects.restrict(request.user, "images.view", environment).exclude(name="") \
        .order_by("name")[:500]
    return render(request, "containers/create.html",
                  {"form": form, "images": images, "source": source, "replace": replace},
                  status=400 if form.errors else 200)


@require_POST
def container_action(request, pk, verb):
    environment, containers = _visible_containers(request)
    container = get_object_or_404(containers, pk=pk)
    try:
        operation = services.act(request.user, environment, container, verb,
                                 force=request.POST.get("force") == "on", signal=request.POST.get("signal", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("container_detail", pk)
    return redirect("operation_detail", operation.pk)


@require_POST
def container_rename(request, pk):
    environment, containers = _visible_containers(request)
    container = get_object_or_404(containers, pk=pk)
    try:
        operation = services.rename(request.user, environment, container, request.POST.get("name", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("container_detail", pk)
    return redirect("operation_detail", operation.pk)


@require_POST
def container_bulk(request):
    environment, containers = _visible_containers(request)
    verb = request.POST.get("verb", "")
    if verb not in BULK_VERBS:
        messages.error(request, "Pick an action.")
        return redirect("containers")
    selected = list(containers.filter(pk__in=row_ids(request.POST.getlist("container"))))
    if not selected:
        messages.error(request, "Select at least one container.")
        return redirect("containers")
    force = request.POST.get("force") == "on"
    started = [services.act(request.user, environment, c, verb, force=force) for c in selected]
    if len(started) == 1:
        return redirect("operation_detail", started[0].pk)
    messages.success(request, f"{verb.capitalize()}: {len(started)} containers.")
    return redirect("containers")
