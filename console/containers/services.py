"""Container actions: the only way views (and later the API) change containers."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from console.access.permissions import can_use_dangerous_options
from console.inventory.models import Container
from console.operations import services as operations
from engine.containers import parse_signal
from engine.errors import InvalidArgument
from engine.volumes import parse_mount

# verb -> (permission, what the operation does); one Operation per container and verb.
ACTIONS = {
    "start": "containers.operate",
    "stop": "containers.operate",
    "restart": "containers.operate",
    "kill": "containers.operate",
    "pause": "containers.operate",
    "unpause": "containers.operate",
    "remove": "containers.remove",
}


def dangerous_options(spec: dict) -> list[str]:
    """What in a create ``spec`` only administrators may ask for (can_use_dangerous_options)."""
    found = []
    if spec.get("network") == "host":
        found.append("the host network")
    try:
        if any(parse_mount(item).kind == "bind" for item in spec.get("volumes") or []):
            found.append("host paths")
    except InvalidArgument as exc:
        raise ValidationError({"volumes": str(exc)}) from None
    if "seccomp=unconfined" in (spec.get("security_opt") or []):
        found.append("no seccomp filter")
    return found


def check_dangerous_options(user, environment, spec: dict) -> None:
    dangerous = dangerous_options(spec)
    if dangerous and not can_use_dangerous_options(user, environment):
        raise PermissionDenied(f"Only administrators may use {', '.join(dangerous)}.")


def create(user, environment, spec: dict, start: bool = True, replace: Container | None = None,
           access: dict | None = None):
    """Create (and start) a container; with ``replace``, remove that one first (edit and recreate).
    ``access``: who may see the new container (console.accounts.forms.access_parameters)."""
    name = spec.get("name")
    taken = Container.objects.filter(environment=environment, name=name)
    if replace is not None:
        taken = taken.exclude(pk=replace.pk)
    if name and taken.exists():
        raise ValidationError({"name": f"The name {name} is already in use by another container."})
    parameters = {"spec": spec, "start": bool(start)}
    if access:
        parameters["access"] = access
    action, permission = "container.create", "containers.create"
    if replace is not None:
        action, permission = "container.recreate", "containers.recreate"
        parameters["replace"] = replace.container_id
    return operations.start(
        user=user, environment=environment, action=action, permission=permission,
        target_type="container", target_id=replace.container_id if replace else "",
        target_name=name or spec["image"], parameters=parameters,
        check=lambda: check_dangerous_options(user, environment, spec),
    )


def act(user, environment, container: Container, verb: str, *, force: bool = False,
        signal: str = "", timeout: int | None = None):
    if verb not in ACTIONS:
        raise ValidationError(f"Unknown action {verb!r}.")
    parameters = {"ref": container.container_id}
    if verb == "kill":
        try:
            parse_signal(signal or "KILL")
        except InvalidArgument as exc:
            raise ValidationError(str(exc)) from None
        parameters["signal"] = signal or "KILL"
    if verb == "remove":
        parameters["force"] = bool(force)
    if verb in ("stop", "restart") and timeout is not None:
        parameters["timeout"] = int(timeout)
    return operations.start(
        user=user, environment=environment, action=f"container.{verb}", permission=ACTIONS[verb],
        target_type="container", target_id=container.container_id, target_name=container.name,
        parameters=parameters,
    )


def rename(user, environment, container: Container, new_name: str):
    from console.containers.forms import NAME

    new_name = (new_name or "").strip()
    if not NAME.match(new_name):
        raise ValidationError("Use letters, digits, '_', '.' and '-', starting with a letter or digit.")
    if Container.objects.filter(environment=environment, name=new_name).exclude(pk=container.pk).exists():
        raise ValidationError(f"The name {new_name} is already in use by another container.")
    return operations.start(
        user=user, environment=environment, action="container.rename", permission="containers.recreate",
        target_type="container", target_id=container.container_id, target_name=container.name,
        parameters={"ref": container.container_id, "name": new_name},
    )
