"""Volume actions: create, remove, prune, each an operation."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from console.inventory.models import Volume
from console.operations import services as operations
from engine.errors import InvalidArgument
from engine.volumes import check_name


def create(user, environment, name: str, labels: dict | None = None):
    name = (name or "").strip()
    operations.authorize(user=user, environment=environment, action="volume.create",
                         target_type="volume", target_name=name)
    if name:
        try:
            check_name(name)
        except InvalidArgument as exc:
            raise ValidationError({"name": str(exc)}) from None
        taken = Volume.objects.filter(environment=environment, name=name)
        if taken.restrict(user, "volumes.view", environment).exists():
            raise ValidationError({"name": f"A volume named {name} exists already."})
        if taken.exists():  # someone else's: that it exists is not told
            raise ValidationError({"name": f"The name {name} is not available: pick another."})
    return operations.start(
        user=user, environment=environment, action="volume.create",
        target_type="volume", target_name=name or "(generated name)",
        parameters={"name": name or None, "labels": labels},
    )


def remove(user, environment, volume: Volume, force: bool = False):
    return operations.start(
        user=user, environment=environment, action="volume.remove",
        target_type="volume", target_id=volume.name, target_name=volume.name,
        parameters={"name": volume.name, "force": bool(force)},
    )


def prune(user, environment):
    return operations.start(
        user=user, environment=environment, action="volume.prune",
        target_type="volume", target_name="unused volumes", parameters={},
    )
