"""The objects a request names, checked against what the user may see and do.

A create names an image, volumes and a network; a build names its ``FROM`` and
``COPY --from`` images; a tag, a build and an import name the tags they will put on
images. Before a service enqueues the operation, and again when its task runs, each
one goes through here. What the user may not see is answered exactly as what does
not exist ("No such image", "network ... not found"); a name the user may not take
is "not available", whoever holds it.

The engine is asked (through the environment's driver), not the mirror: a name moved
or a volume made with ``python -m engine`` a second ago is what the engine will use.
Users whose role has the environment scope for the permission (and global
administrators) see everything, so nothing is looked up for them.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from console.access import ownership
from console.access.catalog import SCOPE_ENVIRONMENT
from console.access.permissions import access_for, has_permission
from engine.errors import EngineError, InvalidArgument, NotFound

HEX = re.compile(r"^(sha256:)?([0-9a-f]{1,64})$")
BUILTIN_NETWORKS = ("private", "none", "host", "bridge", "default")


def unrestricted(user, permission: str, environment) -> bool:
    """The role covers every resource of the environment: there is nothing to hide."""
    return access_for(user, environment).scope(permission) == SCOPE_ENVIRONMENT


def no_such_image(text: str) -> ValidationError:
    return ValidationError(f"No such image: {text}", code="no_such_image")


def present(driver, text: str) -> dict | None:
    """The engine's inspect of the image ``text`` names, or None when it names none."""
    try:
        return driver.inspect_image(text)
    except EngineError:  # not found, an ambiguous ID prefix, a damaged image: nothing to use
        return None


def _named(data: dict, text: str) -> bool:
    """Did the engine find ``data`` by the name ``text`` (not by an ID prefix)?"""
    try:
        key = ownership.name_key(text)
    except InvalidArgument:
        return False
    return key in (data.get("RepoTags") or []) or key in (data.get("RepoDigests") or []) or "@" in text


def image(user, environment, text: str, driver, *, pull: bool = False) -> str:
    """The reference to give the engine for the image ``text`` names, when ``user`` may see it.

    By name or digest: the image the engine would use must be visible. By ID or short ID:
    only the user's visible images are matched, and the full ID is returned (so that the
    engine cannot pick another image with the same prefix). ``pull``: a name that is on no
    local image is returned as is when the user may pull (a build pulls its ``FROM``);
    otherwise it is "No such image", as is anything the user may not see.
    """
    from console.inventory.models import Image

    text = (text or "").strip()
    if not text:
        raise ValidationError("Name an image.")
    if unrestricted(user, "images.view", environment):
        return text
    data = present(driver, text)
    hexid = HEX.match(text)
    if data is not None and (not hexid or _named(data, text)):
        if has_permission(user, "images.view", environment, ("image", data["Id"])):
            return text
        raise no_such_image(text)
    if hexid:
        prefix = "sha256:" + hexid.group(2)
        mine = list(Image.objects.restrict(user, "images.view", environment)
                    .filter(image_id__startswith=prefix).values_list("image_id", flat=True)[:2])
        if len(mine) > 1:
            raise ValidationError(f"The image ID prefix {text} is ambiguous: give more of it.")
        if mine and present(driver, mine[0]) is not None:
            return mine[0]
    pullable = data is None and not (hexid and hexid.group(1))  # "sha256:..." is never pulled
    if pull and pullable and has_permission(user, "images.pull", environment):
        return text
    raise no_such_image(text)


def names(user, environment, refs, driver, permission: str = "images.tag") -> None:
    """Refuse to put ``refs`` (tags) on an image when one of them is on an image now and the
    user does not hold it (``ownership.may_change_name``): moving a name held by others is
    how an administrator ends up running someone else's image under the name they trust."""
    from engine.images.reference import parse

    administrator = unrestricted(user, permission, environment)
    for ref in refs:
        repository = parse(ref).familiar_name
        # The engine reads "sha256:<hex>" and a hex word as a name before an ID: such a name
        # would catch whoever refers to an image by its (short) ID.
        if repository == "sha256" or (not administrator and re.fullmatch(r"[0-9a-f]{1,64}", repository)):
            raise ValidationError(f"The name {ownership.name_key(ref)} reads as an image ID: pick another.",
                                  code="name_reads_as_id")
    if administrator:
        return
    for ref in refs:
        data = present(driver, ref)
        if data is None or not _named(data, ref):
            continue  # a free name
        if not ownership.may_change_name(user, environment, ref, data["Id"]):
            raise ValidationError(f"The name {ownership.name_key(ref)} is not available: it is held by others. "
                                  "Pick another.",
                                  code="name_taken")


def network(user, environment, mode: str | None, driver) -> None:
    """A container's network: a built-in mode, or a network the user may see."""
    if not mode or mode in BUILTIN_NETWORKS or unrestricted(user, "networks.view", environment):
        return
    missing = ValidationError({"network": f"network {mode} not found"})
    try:
        data = driver.inspect_network(mode)
    except (NotFound, InvalidArgument):
        raise missing from None
    if data.get("Builtin"):
        return
    if not has_permission(user, "networks.view", environment, ("network", data["Id"])):
        raise missing


def volume_sources(specs) -> list[str]:
    """The named volumes among ``-v`` specs (host paths and anonymous volumes aside)."""
    from engine.volumes import parse_mount

    found = []
    for item in specs or []:
        if is_host_path(item):
            continue
        try:
            mount = parse_mount(item)
        except InvalidArgument as exc:
            raise ValidationError({"volumes": str(exc)}) from None
        if mount.kind == "volume":
            found.append(mount.source)
    return found


def is_host_path(spec: str) -> bool:
    """Is this ``-v`` spec a bind of a host path? Decided from its text alone, so that a
    refusal comes before the engine looks at the path (whose existence is not to be told)."""
    if not isinstance(spec, str):
        return False
    parts = spec.split(":")
    if len(parts) == 3 or (len(parts) == 2 and parts[1].startswith("/")):
        return parts[0].startswith(("/", "."))
    return False


def volumes(user, environment, specs, driver) -> list[str]:
    """Named volumes must be ones the user may see, or not exist yet (the engine makes them,
    and the create records them as the user's). Returns the names that do not exist yet."""
    named = volume_sources(specs)
    if not named:
        return []
    existing = {volume["Name"] for volume in driver.list_volumes()}  # without sizes: no walking
    new = []
    for name in named:
        if name not in existing:
            new.append(name)
            continue
        if not has_permission(user, "volumes.view", environment, ("volume", name)):
            raise ValidationError({"volumes": f"The volume name {name} is not available: pick another."})
    return new
