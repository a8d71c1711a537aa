"""Registries pages: list, add, edit, delete; a registry with its last test, its
activity and its repositories (browsed, searchable, with a Pull button per tag).

Registries are global: the permission is checked against the current environment,
as every check is, and their operations are recorded in it. A user with an owned-scope
role sees only the registries whose credentials they may use (``access``); the others
are a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console.access.permissions import has_permission, require
from console.core.environments import current_environment
from console.operations.models import Operation
from console.registries import access, services
from console.registries.forms import RegistryForm, RepositoryForm
from console.registries.models import Registry

PAGE_SIZE = 50
SORTS = {"name": ("name",), "host": ("host", "name"), "kind": ("kind", "name"),
         "-tested": (F("last_tested_at").desc(nulls_last=True), "name")}
ACTIVITY = ("registry.test", "registry.browse", "registry.tags")
TAGS_SHOWN = 30


def _viewable(request):
    environment = current_environment(request)
    require(request.user, "registries.view", environment)
    return environment


def _registry(request, environment, pk) -> Registry:
    return get_object_or_404(access.visible(request.user, environment), pk=pk)


def _rights(request, environment, registry=None) -> dict:
    can_use = (access.may_use(request.user, environment, registry) if registry is not None
               else has_permission(request.user, "registries.use", environment))
    return {"can_manage": has_permission(request.user, "registries.manage", environment),
            "can_use": can_use,
            "can_pull": can_use and has_permission(request.user, "images.pull", environment)}


def registry_list(request):
    environment = _viewable(request)
    registries = access.visible(request.user, environment).annotate(repository_count=Count("repositories"))
    query = request.GET.get("q", "").strip()
    if query:
        registries = registries.filter(Q(name__icontains=query) | Q(host__icontains=query)
                                       | Q(username__icontains=query))
    sort = request.GET.get("sort", "name")
    registries = registries.order_by(*SORTS.get(sort, SORTS["name"]))
    page = Paginator(registries, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "query": query, "sort": sort, **_rights(request, environment)}
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "registry-rows":
        return render(request, "registries/_rows.html", context)
    return render(request, "registries/list.html", context)


def _form_page(request, form, registry=None, status=200):
    return render(request, "registries/form.html", {"form": form, "registry": registry}, status=status)


def _save_form(request, form, save):
    """Validate ``form`` then call ``save(**arguments)``; service errors land on their fields."""
    if not form.is_valid():
        return None
    try:
        return save(**form.service_arguments())
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc)
        return None


def registry_add(request):
    environment = _viewable(request)
    services.authorize(request.user, "registries.manage", "registry.create", environment)
    form = RegistryForm(request.POST or None)
    if request.method == "POST":
        registry = _save_form(request, form, lambda **kw: services.create(request.user, environment, **kw))
        if registry is not None:
            messages.success(request, f"Registry {registry.name} added. Test its credentials to be sure.")
            return redirect("registry_detail", registry.pk)
        return _form_page(request, form, status=400)
    return _form_page(request, form)


def registry_edit(request, pk):
    environment = _viewable(request)
    registry = _registry(request, environment, pk)
    services.authorize(request.user, "registries.manage", "registry.update", environment, registry)
    form = RegistryForm(request.POST or None, registry=registry)
    if request.method == "POST":
        saved = _save_form(request, form, lambda **kw: services.update(request.user, environment, registry, **kw))
        if saved is not None:
            messages.success(request, f"Registry {saved.name} saved.")
            return redirect("registry_detail", saved.pk)
        registry.refresh_from_db()  # the failed validation may have touched the instance
        return _form_page(request, form, registry, status=400)
    return _form_page(request, form, registry)


def registry_delete(request, pk):
    environment = _viewable(request)
    registry = _registry(request, environment, pk)
    services.authorize(request.user, "registries.manage", "registry.delete", environment, registry)
    if request.method == "POST":
        name = registry.name
        services.delete(request.user, environment, registry)
        messages.success(request, f"Registry {name} deleted. Images pulled from it stay.")
        return redirect("registries")
    return render(request, "registries/delete.html",
                  {"registry": registry, "repository_count": registry.repositories.count()})


def _activity(registry) -> tuple[list[Operation], bool]:
    recent = list(Operation.objects.filter(target_type="registry", target_id=str(registry.pk),
                                           action__in=ACTIVITY).order_by("-created_at")[:5])
    return recent, any(not op.finished for op in recent)


def registry_detail(request, pk, repository_form=None, status=200):
    environment = _viewable(request)
    registry = _registry(request, environment, pk)
    repositories = registry.repositories.all()
    query = request.GET.get("q", "").strip()
    if query:
        repositories = repositories.filter(name__contains=query.lower())
    page = Paginator(repositories.order_by("name"), PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    for repository in page.object_list:
        repository.more_tags = max(0, len(repository.tags) - TAGS_SHOWN)
    activity, pending = _activity(registry)
    context = {"registry": registry, "page": page, "query": query, "activity": activity, "pending": pending,
               "repository_form": repository_form or RepositoryForm(), "tags_shown": TAGS_SHOWN,
               "environment": environment, "total_repositories": registry.repositories.count(),
               **_rights(request, environment, registry)}
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "repository-rows":
        return render(request, "registries/_repository_rows.html", context)
    return render(request, "registries/detail.html", context, status=status)


def registry_activity(request, pk):
    """The activity box, polled while an operation runs; once all are done, the page reloads."""
    registry = _registry(request, _viewable(request), pk)
    activity, pending = _activity(registry)
    if request.GET.get("pending") and not pending:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "registries/_activity.html",
                  {"registry": registry, "activity": activity, "pending": pending})


def _start(request, pk, start):
    environment = _viewable(request)
    registry = _registry(request, environment, pk)
    try:
        start(environment, registry)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("registry_detail", registry.pk)


@require_POST
def registry_test(request, pk):
    return _start(request, pk, lambda environment, registry: services.test(request.user, environment, registry))


@require_POST
def registry_browse(request, pk):
    return _start(request, pk, lambda environment, registry: services.browse(request.user, environment, registry))


@require_POST
def registry_tags(request, pk):
    environment = _viewable(request)
    registry = _registry(request, environment, pk)
    services.authorize(request.user, "registries.use", "registry.tags", environment, registry)
    access.require_use(request.user, environment, registry, "registry.tags")
    form = RepositoryForm(request.POST)
    if form.is_valid():
        try:
            services.list_tags(request.user, environment, registry, form.cleaned_data["repository"])
        except ValidationError as exc:
            form.add_error("repository", exc)
        else:
            return redirect("registry_detail", registry.pk)
    return registry_detail(request, pk, repository_form=form, status=400)
