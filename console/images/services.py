"""Image actions: the only way views (and later the API) change images.

Each validates its input (raising ValidationError with the field's message),
then starts an Operation, which checks the permission and audits.
"""

from __future__ import annotations

import shutil
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from console import audit
from console.access.permissions import require
from console.operations import services as operations
from console.registries import access as registry_access
from console.registries import reach
from console.registries.models import Registry
from engine.errors import InvalidArgument
from engine.reference import parse


def normalize_reference(text: str, registry: Registry | None = None) -> str:
    """The full reference, with the registry's host in front when one was picked."""
    text = (text or "").strip()
    if not text:
        raise ValidationError("Give an image reference, e.g. busybox:latest.")
    if registry is not None and not text.startswith(registry.host + "/"):
        text = f"{registry.host}/{text}"
    try:
        return str(parse(text))
    except InvalidArgument as exc:
        raise ValidationError(str(exc)) from None


def _require_registry_use(user, environment, registry: Registry | None) -> None:
    """Using a configured registry's credentials: this registry's, by this user (denials audited)."""
    if registry is None:
        return
    try:
        registry_access.check_use(user, environment, registry)
    except PermissionDenied:
        audit.record(user=user, action="registry.use", environment=environment, target_type="registry",
                     target_id=str(registry.pk), target_name=registry.name, outcome="denied")
        raise


def pull(user, environment, reference: str, registry: Registry | None = None, platform: str = "",
         access: dict | None = None):
    ref = normalize_reference(reference, registry)
    _require_registry_use(user, environment, registry)
    parameters = {"reference": ref, "registry_id": registry.pk if registry else None,
                  "platform": platform.strip() or None}
    if access:
        parameters["access"] = access  # who may see the pulled image
    return operations.start(
        user=user, environment=environment, action="image.pull", permission="images.pull",
        target_type="image", target_name=ref, parameters=parameters,
        check=lambda: reach.check(reach.host_of(ref)),  # once the permission is known: a reachable registry
    )


def push(user, environment, image, target: str = "", registry: Registry | None = None):
    source = image.name or image.image_id
    target_ref = normalize_reference(target or source, registry)
    _require_registry_use(user, environment, registry)
    return operations.start(
        user=user, environment=environment, action="image.push", permission="images.push",
        target_type="image", target_id=image.image_id, target_name=target_ref,
        parameters={"source": image.image_id, "target": target_ref,
                    "registry_id": registry.pk if registry else None},
        check=lambda: reach.check(reach.host_of(target_ref)),
    )


def tag(user, environment, image, target: str):
    target_ref = normalize_reference(target)
    return operations.start(
        user=user, environment=environment, action="image.tag", permission="images.tag",
        target_type="image", target_id=image.image_id, target_name=target_ref,
        parameters={"source": image.image_id, "target": target_ref},
    )


def remove(user, environment, image, force: bool = False, tag: str = ""):
    """Remove an image, or only one of its tags when ``tag`` is given (as ``docker rmi name:tag``)."""
    if tag and tag not in image.repo_tags:
        raise ValidationError(f"{tag} is not a tag of this image.")
    return operations.start(
        user=user, environment=environment, action="image.remove", permission="images.remove",
        target_type="image", target_id=image.image_id, target_name=tag or image.name or image.short_id,
        parameters={"name": tag or image.image_id, "force": bool(force)},
    )


def prune(user, environment, all_unused: bool = False):
    return operations.start(
        user=user, environment=environment, action="image.prune", permission="images.prune",
        target_type="image", target_name="all unused" if all_unused else "dangling",
        parameters={"all": bool(all_unused)},
    )


def transfers_dir():
    """Where uploaded tars wait for a worker and exported tars wait for their download."""
    path = settings.DATA_DIR / "transfers"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def load(user, environment, upload):
    """Load images from an uploaded ``docker save`` tar (or OCI layout tar)."""
    require(user, "images.import_export", environment)  # before writing anything to disk
    if upload is None or upload.size == 0:
        raise ValidationError("Choose a tar file made by docker save (or an OCI layout tar).")
    path = transfers_dir() / f"upload-{uuid.uuid4().hex}.tar"
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        return operations.start(
            user=user, environment=environment, action="image.load", permission="images.import_export",
            target_type="image", target_name=upload.name[:300],
            parameters={"path": str(path), "filename": upload.name, "size": upload.size},
        )
    except Exception:
        path.unlink(missing_ok=True)
        raise


def save(user, environment, images):
    """Write the images to a tar that ``docker load`` accepts, to download from the operation."""
    if not images:
        raise ValidationError("Select at least one image to export.")
    names = [image.name or image.image_id for image in images]
    path = transfers_dir() / f"export-{uuid.uuid4().hex}.tar"
    return operations.start(
        user=user, environment=environment, action="image.save", permission="images.import_export",
        target_type="image", target_name=", ".join(names)[:300],
        parameters={"names": names, "path": str(path)},
    )


def build(user, environment, dockerfile: str, tags: list[str], context=None, no_cache: bool = False):
    """Build from a Dockerfile written in the page, with an optional uploaded context tar."""
    require(user, "images.build", environment)  # before writing anything to disk
    refs = [normalize_reference(tag) for tag in tags]
    if not dockerfile.strip() and context is None:
        raise ValidationError({"dockerfile": "Write a Dockerfile, or upload a context that holds one."})
    work = transfers_dir() / f"build-{uuid.uuid4().hex}"
    work.mkdir(mode=0o700)
    parameters = {"work": str(work), "tags": refs, "no_cache": bool(no_cache)}
    if context is not None:
        with open(work / "context.tar", "wb") as out:
            for chunk in context.chunks():
                out.write(chunk)
        parameters["context"] = str(work / "context.tar")
    else:
        (work / "context").mkdir()
        parameters["context"] = str(work / "context")
    if dockerfile.strip():
        (work / "Dockerfile").write_text(dockerfile)
        parameters["dockerfile"] = str(work / "Dockerfile")
    else:
        parameters["dockerfile"] = "Dockerfile"  # the one inside the uploaded context
    try:
        return operations.start(
            user=user, environment=environment, action="image.build", permission="images.build",
            target_type="image", target_name=", ".join(refs) or "(untagged)", parameters=parameters,
        )
    except Exception:
        shutil.rmtree(work, ignore_errors=True)
        raise
