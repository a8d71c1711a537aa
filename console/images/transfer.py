"""Moving images in and out as tar files: import (docker load) and export (docker save)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from console import audit
from console.access.permissions import require
from console.core.environments import current_environment
from console.images import services
from console.inventory.models import Image
from console.web.pages import row_ids


def image_import(request):
    environment = current_environment(request)
    require(request.user, "images.import_export", environment)
    error = None
    if request.method == "POST":
        try:
            operation = services.load(request.user, environment, request.FILES.get("archive"))
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            return redirect("operation_detail", operation.pk)
    return render(request, "images/import.html", {"error": error}, status=400 if error else 200)


@require_POST
def image_export(request):
    environment = current_environment(request)
    require(request.user, "images.import_export", environment)
    images = Image.objects.restrict(request.user, "images.view", environment)
    selected = list(images.filter(pk__in=row_ids(request.POST.getlist("image"))))
    try:
        operation = services.save(request.user, environment, selected)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("images")
    return redirect("operation_detail", operation.pk)


def export_download(request, pk):
    """The tar an export operation wrote, to the user who made it (or an administrator)."""
    environment = current_environment(request)
    path, operation = services.export_file(request.user, environment, pk)
    audit.record(user=request.user, action="image.export.download", environment=environment,
                 target_type="image", target_name=operation.target_name, operation=operation)
    name = "-".join(n.rsplit("/", 1)[-1].replace(":", "_") for n in operation.parameters["names"])[:80]
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"{name or 'images'}.tar",
                        content_type="application/x-tar")
