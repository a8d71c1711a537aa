"""Volumes pages: list, create, detail (size, who uses it), remove, prune."""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console.access.permissions import has_permission
from console.core.environments import current_environment
from console.core.forms_util import parse_key_values
from console.drivers import driver_for
from console.inventory.models import Volume
from console.volumes import services
from console.web.pages import inspect_or_gone, list_with_create, visible_rows


class VolumeForm(forms.Form):
    name = forms.CharField(max_length=255, required=False, help_text="Leave empty for a generated name.")
    labels = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "placeholder": "key=value"}))

    def clean_labels(self):
        return parse_key_values(self.cleaned_data["labels"])


def _volumes(request):
    return visible_rows(request, Volume, "volumes")


def volume_list(request):
    return list_with_create(request, Volume, "volumes", VolumeForm, services.create)


def volume_detail(request, pk):
    environment, volumes = _volumes(request)
    volume = get_object_or_404(volumes, pk=pk)
    inspect = inspect_or_gone(request, environment, "volumes", f"Volume {volume.name}",
                              lambda: driver_for(environment).inspect_volume(volume.name))
    if inspect is None:
        return redirect("volumes")
    return render(request, "volumes/detail.html", {
        "volume": volume, "inspect": inspect,
        "can_remove": has_permission(request.user, "volumes.remove", environment)})


@require_POST
def volume_remove(request, pk):
    environment, volumes = _volumes(request)
    volume = get_object_or_404(volumes, pk=pk)
    operation = services.remove(request.user, environment, volume, force=request.POST.get("force") == "on")
    return redirect("operation_detail", operation.pk)


@require_POST
def volume_prune(request):
    environment = current_environment(request)
    return redirect("operation_detail", services.prune(request.user, environment).pk)
