"""Images pages: list, pull, detail with tag, push and remove, prune."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console.access import ownership
from console.access.objects import unrestricted
from console.access.permissions import has_permission, require
from console.accounts.forms import access_parameters, add_access_fields
from console.core.environments import current_environment
from console.drivers import driver_for
from console.images import services
from console.images.forms import PruneForm, PullForm, PushForm, TagForm
from console.inventory.models import Container, Image
from console.web.pages import inspect_or_gone, row_ids, visible_rows
from engine.errors import EngineError

PAGE_SIZE = 50
SORTS = {"name": ("name", "image_id"), "-size": ("-size", "name"), "size": ("size", "name"),
         "-created": ("-created", "name"), "created": ("created", "name")}


def _visible_images(request):
    """The images the user may see here: what they may not see is a 404, not a 403."""
    return visible_rows(request, Image, "images")


def _shown(request, environment, rows):
    """Rows as this user may see them: without the names of others (ownership.visible_names)."""
    if not unrestricted(request.user, "images.view", environment):
        ownership.visible_names(request.user, environment, rows)
    return rows


def image_list(request):
    environment, images = _visible_images(request)
    query = request.GET.get("q", "").strip()
    if query:
        images = images.filter(search_text__contains=query.lower())
        if not unrestricted(request.user, "images.view", environment):
            # Matched by a name the user may not see: not a match (the name is not to be told).
            rows = _shown(request, environment, list(images))
            images = images.exclude(pk__in=[row.pk for row in rows if query.lower() not in " ".join(
                [*row.repo_tags, *row.repo_digests, row.image_id]).lower()])
    if request.GET.get("dangling") == "1":
        images = images.filter(name="")
    sort = request.GET.get("sort", "name")
    images = images.order_by(*SORTS.get(sort, SORTS["name"]))
    page = Paginator(images, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = _shown(request, environment, list(page.object_list))
    context = {
        "page": page, "query": query, "sort": sort, "dangling": request.GET.get("dangling") == "1",
        "pull_form": PullForm(user=request.user, environment=environment), "prune_form": PruneForm(),
        "environment": environment,
        "can_pull": has_permission(request.user, "images.pull", environment),
        "can_remove": has_permission(request.user, "images.remove", environment),
        "can_prune": has_permission(request.user, "images.prune", environment),
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "image-rows":
        return render(request, "images/_rows.html", context)
    return render(request, "images/list.html", context)


def image_pull(request):
    environment = current_environment(request)
    require(request.user, "images.pull", environment)
    form = add_access_fields(PullForm(request.POST or None, user=request.user, environment=environment),
                             request.user, environment)
    if request.method == "POST" and form.is_valid():
        try:
            operation = services.pull(request.user, environment, form.cleaned_data["reference"],
                                      form.cleaned_data["registry"], form.cleaned_data["platform"],
                                      access=access_parameters(form.cleaned_data))
        except ValidationError as exc:
            form.add_error("reference", exc)
        else:
            return redirect("operation_detail", operation.pk)
    return render(request, "images/pull.html", {"form": form}, status=400 if form.errors else 200)


def image_detail(request, pk):
    environment, images = _visible_images(request)
    image = _shown(request, environment, [get_object_or_404(images, pk=pk)])[0]
    inspect = inspect_or_gone(request, environment, "images", f"Image {image}",
                              lambda: driver_for(environment).inspect_image(image.image_id))
    if inspect is None:
        return redirect("images")
    return render(request, "images/detail.html", _detail_context(request, environment, image, inspect))


def _detail_context(request, environment, image, inspect, **forms) -> dict:
    """The image page, also shown again with a tag or push form's errors."""
    return {
        "image": image, "inspect": inspect, "tag_form": TagForm(),
        "push_form": PushForm(user=request.user, environment=environment),
        "containers": Container.objects.filter(image_id=image.image_id).restrict(
            request.user, "containers.view", environment).order_by("name")[:100],
        "can_tag": has_permission(request.user, "images.tag", environment, image),
        "can_push": has_permission(request.user, "images.push", environment, image),
        "can_remove": has_permission(request.user, "images.remove", environment, image),
        **forms,
    }


@require_POST
def image_tag(request, pk):
    environment, images = _visible_images(request)
    image = get_object_or_404(images, pk=pk)
    require(request.user, "images.tag", environment, image)
    form = TagForm(request.POST)
    if form.is_valid():
        try:
            operation = services.tag(request.user, environment, image, form.cleaned_data["target"])
        except ValidationError as exc:
            form.add_error("target", exc)
        else:
            return redirect("operation_detail", operation.pk)
    return _detail_with_errors(request, environment, image, tag_form=form)


@require_POST
def image_push(request, pk):
    environment, images = _visible_images(request)
    image = get_object_or_404(images, pk=pk)
    require(request.user, "images.push", environment, image)
    form = PushForm(request.POST, user=request.user, environment=environment)
    if form.is_valid():
        try:
            operation = services.push(request.user, environment, image, form.cleaned_data["target"],
                                      form.cleaned_data["registry"])
        except ValidationError as exc:
            form.add_error("target", exc)
        else:
            return redirect("operation_detail", operation.pk)
    return _detail_with_errors(request, environment, image, push_form=form)


def _detail_with_errors(request, environment, image, **forms):
    image = _shown(request, environment, [image])[0]
    try:
        inspect = driver_for(environment).inspect_image(image.image_id)
    except EngineError:
        inspect = None
    return render(request, "images/detail.html", _detail_context(request, environment, image, inspect, **forms),
                  status=400)


@require_POST
def image_remove(request):
    """Remove the selected images (or one tag of one image)."""
    environment, images = _visible_images(request)
    require(request.user, "images.remove", environment)
    removable = images.restrict(request.user, "images.remove", environment)
    selected = list(removable.filter(pk__in=row_ids(request.POST.getlist("image"))))
    if not selected:
        messages.error(request, "Select at least one image to remove.")
        return redirect("images")
    force = request.POST.get("force") == "on"
    tag = request.POST.get("tag", "")
    try:
        operations = [services.remove(request.user, environment, image, force=force, tag=tag)
                      for image in selected]
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("images")
    if len(operations) == 1:
        return redirect("operation_detail", operations[0].pk)
    messages.success(request, f"Removing {len(operations)} images.")
    return redirect("operations")


@require_POST
def image_prune(request):
    environment = current_environment(request)
    form = PruneForm(request.POST)
    form.is_valid()
    operation = services.prune(request.user, environment, form.cleaned_data.get("all", False))
    return redirect("operation_detail", operation.pk)
