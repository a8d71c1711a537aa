"""Network actions: create, remove, prune, each an operation."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError

from console.inventory.models import Network
from console.operations import services as operations

NAME_HELP = "Use letters, digits, '_', '.' and '-', starting with a letter or digit."


def create(user, environment, name: str, subnet: str = "", gateway: str = "", internal: bool = False,
           labels: dict | None = None):
    from engine.net.networks import NAME_RE

    name = (name or "").strip()
    operations.authorize(user=user, environment=environment, action="network.create",
                         target_type="network", target_name=name)
    if not NAME_RE.match(name):
        raise ValidationError({"name": NAME_HELP})
    visible = Network.objects.restrict(user, "networks.view", environment)
    taken = Network.objects.filter(environment=environment, name=name)
    if visible.filter(name=name).exists():
        raise ValidationError({"name": f"A network named {name} exists already."})
    if taken.exists():  # someone else's: that it exists is not told
        raise ValidationError({"name": f"The name {name} is not available: pick another."})
    subnet, gateway = (subnet or "").strip(), (gateway or "").strip()
    if subnet:
        try:
            network = ipaddress.IPv4Network(subnet, strict=True)
        except ValueError as exc:
            raise ValidationError({"subnet": f"Not an IPv4 subnet in CIDR form (e.g. 10.213.5.0/24): {exc}."}) from None
        for other in Network.objects.filter(environment=environment).exclude(subnet=""):
            if network.overlaps(ipaddress.IPv4Network(other.subnet, strict=False)):
                if visible.filter(pk=other.pk).exists():
                    raise ValidationError({"subnet": f"Overlaps the subnet {other.subnet} of network {other.name}."})
                raise ValidationError({"subnet": "Overlaps a subnet already in use: pick another."})
        if gateway:
            try:
                if ipaddress.IPv4Address(gateway) not in network:
                    raise ValidationError({"gateway": f"The gateway must be inside {subnet}."})
            except ValueError:
                raise ValidationError({"gateway": "Not an IPv4 address."}) from None
    elif gateway:
        raise ValidationError({"gateway": "A gateway needs a subnet."})
    return operations.start(
        user=user, environment=environment, action="network.create",
        target_type="network", target_name=name,
        parameters={"name": name, "subnet": subnet or None, "gateway": gateway or None,
                    "internal": bool(internal), "labels": labels or {}},
    )


def remove(user, environment, network: Network):
    if network.builtin:
        raise ValidationError(f"{network.name} is built in and cannot be removed.")
    return operations.start(
        user=user, environment=environment, action="network.remove",
        target_type="network", target_id=network.network_id, target_name=network.name,
        parameters={"ref": network.network_id},
    )


def prune(user, environment):
    return operations.start(
        user=user, environment=environment, action="network.prune",
        target_type="network", target_name="unused networks", parameters={},
    )
