"""Container actions: the only way views (and later the API) change containers."""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied, ValidationError

from console import audit
from console.access import objects
from console.access.permissions import can_use_dangerous_options
from console.inventory.models import Container
from console.operations import services as operations
from console.operations.actions import CONTAINER_VERBS
from engine.containers.inputs import parse_signal
from engine.errors import InvalidArgument

# verb -> (permission, what the operation does); one Operation per container and verb.
VERBS = CONTAINER_VERBS  # what act() does (their permissions: console.operations.actions)


HOSTNAME_LABEL = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")  # RFC 1123


def check_hostname(hostname: str | None) -> None:
    """A hostname is dot-separated RFC 1123 labels (letters, digits, '-' inside), 253 at most."""
    if not hostname:
        return
    if len(hostname) > 253 or not all(HOSTNAME_LABEL.match(label) for label in hostname.split(".")):
        raise ValidationError({"hostname": "Use letters, digits and '-' (not first or last), at most 63 "
                                           "to a label, labels separated by dots."})


def dangerous_options(spec: dict) -> list[str]:
    """What in a create ``spec`` only administrators may ask for (can_use_dangerous_options).
    Told from the text alone: a host path is refused before anyone looks at it."""
    found = []
    if spec.get("network") == "host":
        found.append("the host network")
    if any(objects.is_host_path(item) for item in spec.get("volumes") or []):
        found.append("host paths")
    if "seccomp=unconfined" in (spec.get("security_opt") or []):
        found.append("no seccomp filter")
    return found


def check_dangerous_options(user, environment, spec: dict) -> None:
    dangerous = dangerous_options(spec)
    if dangerous and not can_use_dangerous_options(user, environment):
        raise PermissionDenied(f"Only administrators may use {', '.join(dangerous)}.")


def name_taken(user, environment, name: str, exclude=None) -> ValidationError | None:
    """The error for a container name in use: naming the container only to those who may see it."""
    taken = Container.objects.filter(environment=environment, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if not name or not taken.exists():
        return None
    if taken.restrict(user, "containers.view", environment).exists():
        return ValidationError({"name": f"The name {name} is already in use by another container."})
    return ValidationError({"name": f"The name {name} is not available: pick another."})


def check_objects(user, environment, spec: dict, driver) -> tuple[dict, list[str]]:
    """What the spec names, as ``user`` may use it: (the spec with its image as the engine
    is to take it, the named volumes that do not exist yet). Raises ValidationError as if
    what the user may not see did not exist. The service calls it, and the task again."""
    spec = dict(spec)
    try:
        spec["image"] = objects.image(user, environment, spec.get("image") or "", driver)
    except ValidationError as exc:
        raise ValidationError({"image": exc.messages}) from None
    objects.network(user, environment, spec.get("network"), driver)
    new_volumes = objects.volumes(user, environment, spec.get("volumes"), driver)
    return spec, new_volumes


def create(user, environment, spec: dict, start: bool = True, replace: Container | None = None,
           access: dict | None = None):
    """Create (and start) a container; with ``replace``, remove that one first (edit and recreate).
    ``access``: who may see the new container (console.accounts.forms.access_parameters)."""
    from console.drivers import driver_for

    name = spec.get("name")
    action = "container.create" if replace is None else "container.recreate"
    target = {"target_type": "container", "target_id": replace.container_id if replace else "",
              "target_name": name or spec.get("image") or ""}

    def check():
        check_dangerous_options(user, environment, spec)

    # The permission first: nothing below may tell someone without it what exists.
    operations.authorize(user=user, environment=environment, action=action,
                         details=audit.redact({"spec": spec}), check=check, **target)
    check_hostname(spec.get("hostname"))
    taken = name_taken(user, environment, name, exclude=replace)
    if taken is not None:
        raise taken
    spec, _ = check_objects(user, environment, spec, driver_for(environment))
    parameters = {"spec": spec, "start": bool(start)}
    if access:
        parameters["access"] = access
    if replace is not None:
        parameters["replace"] = replace.container_id
    return operations.start(user=user, environment=environment, action=action,
                            parameters=parameters, check=check, **target)


def act(user, environment, container: Container, verb: str, *, force: bool = False,
        signal: str = "", timeout: int | None = None):
    if verb not in VERBS:
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
        user=user, environment=environment, action=f"container.{verb}",
        target_type="container", target_id=container.container_id, target_name=container.name,
        parameters=parameters,
    )


def rename(user, environment, container: Container, new_name: str):
    from console.containers.forms import NAME

    new_name = (new_name or "").strip()
    operations.authorize(user=user, environment=environment, action="container.rename",
                         target_type="container",
                         target_id=container.container_id, target_name=container.name)
    if not NAME.match(new_name):
        raise ValidationError("Use letters, digits, '_', '.' and '-', starting with a letter or digit.")
    taken = name_taken(user, environment, new_name, exclude=container)
    if taken is not None:
        raise ValidationError(taken.message_dict["name"])
    return operations.start(
        user=user, environment=environment, action="container.rename",
        target_type="container", target_id=container.container_id, target_name=container.name,
        parameters={"ref": container.container_id, "name": new_name},
    )
