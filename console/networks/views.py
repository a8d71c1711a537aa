"""Networks pages: list, create (subnet, gateway, internal), detail with containers, remove, prune."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console.access.permissions import has_permission
from console.core.environments import current_environment
from console.core.forms_util import parse_key_values
from console.drivers import driver_for
from console.inventory.models import Network
from console.networks import services
from console.web.pages import inspect_or_gone, list_with_create, visible_rows


class NetworkForm(forms.Form):
    name = forms.CharField(max_length=64)
    subnet = forms.CharField(max_length=50, required=False, help_text="CIDR, e.g. 10.213.5.0/24; empty picks a free one.")
    gateway = forms.CharField(max_length=50, required=False)
    internal = forms.BooleanField(required=False, label="Internal (no route outside)")
    labels = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "placeholder": "key=value"}))

    def clean_labels(self):
        return parse_key_values(self.cleaned_data["labels"])


def _networks(request):
    return visible_rows(request, Network, "networks")


def network_list(request):
    return list_with_create(request, Network, "networks", NetworkForm, services.create)


def network_detail(request, pk):
    environment, networks = _networks(request)
    network = get_object_or_404(networks, pk=pk)
    inspect = inspect_or_gone(request, environment, "networks", f"Network {network.name}",
                              lambda: driver_for(environment).inspect_network(network.network_id))
    if inspect is None:
        return redirect("networks")
    return render(request, "networks/detail.html", {
        "network": network, "inspect": inspect,
        "can_remove": has_permission(request.user, "networks.remove", environment)})


@require_POST
def network_remove(request, pk):
    environment, networks = _networks(request)
    network = get_object_or_404(networks, pk=pk)
    try:
        operation = services.remove(request.user, environment, network)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("network_detail", pk)
    return redirect("operation_detail", operation.pk)


@require_POST
def network_prune(request):
    environment = current_environment(request)
    return redirect("operation_detail", services.prune(request.user, environment).pk)
