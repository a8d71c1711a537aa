"""Image actions: the only way views (and later the API) change images.

Each validates its input (raising ValidationError with the field's message),
then starts an Operation, which checks the permission and audits.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from console import audit
from console.access import objects, ownership
from console.access.permissions import has_permission, is_administrator, require
from console.operations import services as operations
from console.registries import access as registry_access
from console.registries import reach
from console.registries.models import Registry
from engine.build import dockerfile as df
from engine.errors import EngineError, InvalidArgument
from engine.images.reference import parse

DOCKERFILE_MAX = 1 << 20  # a Dockerfile read for its image references, at most
AUDIT_DOCKERFILE_MAX = 16 * 1024  # of its text kept in the build's audit record (its digest is whole)


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
        user=user, environment=environment, action="image.pull",
        target_type="image", target_name=ref, parameters=parameters,
        check=lambda: reach.check(reach.host_of(ref)),  # once the permission is known: a reachable registry
    )


def push(user, environment, image, target: str = "", registry: Registry | None = None):
    source = image.name or image.image_id
    target_ref = normalize_reference(target or source, registry)
    _require_registry_use(user, environment, registry)
    return operations.start(
        user=user, environment=environment, action="image.push",
        target_type="image", target_id=image.image_id, target_name=target_ref,
        parameters={"source": image.image_id, "target": target_ref,
                    "registry_id": registry.pk if registry else None},
        check=lambda: reach.check(reach.host_of(target_ref)),
    )


def _driver(environment):
    from console.drivers import driver_for

    return driver_for(environment)


def tag(user, environment, image, target: str):
    """Put the name ``target`` on ``image``; refused when the name is on an image now and
    the user does not hold it (``objects.names``), here and again in the task."""
    operations.authorize(user=user, environment=environment, action="image.tag",
                         target_type="image", target_id=image.image_id, target_name=target)
    target_ref = normalize_reference(target)
    objects.names(user, environment, [target_ref], _driver(environment), "images.tag")
    return operations.start(
        user=user, environment=environment, action="image.tag",
        target_type="image", target_id=image.image_id, target_name=target_ref,
        parameters={"source": image.image_id, "target": target_ref},
    )


def check_removal(user, environment, image_id: str, names: list[str], tag: str = "") -> None:
    """Removing a name is for who holds it; removing an image (every name on it) is for who
    holds all of its names. Raises PermissionDenied."""
    if objects.unrestricted(user, "images.remove", environment):
        return
    for name in [tag] if tag else names:
        if not ownership.may_change_name(user, environment, name, image_id):
            if tag:
                raise PermissionDenied(f"You may not remove {tag}: the name is held by others.")
            raise PermissionDenied("Names held by others are on this image: remove your own tags instead.")


def remove(user, environment, image, force: bool = False, tag: str = ""):
    """Remove an image, or only one of its tags when ``tag`` is given (as ``docker rmi name:tag``)."""
    if tag and tag not in image.repo_tags:
        raise ValidationError(f"{tag} is not a tag of this image.")
    return operations.start(
        user=user, environment=environment, action="image.remove",
        target_type="image", target_id=image.image_id, target_name=tag or image.name or image.short_id,
        parameters={"name": tag or image.image_id, "force": bool(force)},
        check=lambda: check_removal(user, environment, image.image_id, list(image.repo_tags), tag),
    )


def prune(user, environment, all_unused: bool = False):
    return operations.start(
        user=user, environment=environment, action="image.prune",
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
        check_load(user, environment, path, _driver(environment))
        return operations.start(
            user=user, environment=environment, action="image.load",
            target_type="image", target_name=upload.name[:300],
            parameters={"path": str(path), "filename": upload.name, "size": upload.size},
        )
    except Exception:
        path.unlink(missing_ok=True)
        raise


def archive_names(path) -> list[str]:
    """The names loading this archive would put on images, read as the engine's loader reads
    them (its own tar reader: the same member wins): ``manifest.json``'s RepoTags and the
    annotations of ``index.json``'s descriptors."""
    import json

    from engine.images import store as im
    from engine.images.archive import _TarSource

    found = []
    try:
        with tarfile.open(path, mode="r:*") as tar:
            source = _TarSource(tar)
            documents = {name: json.loads(source.read(name)) for name in ("manifest.json", "index.json")
                         if source.exists(name)}
    except (OSError, tarfile.TarError, ValueError, EngineError):
        return []  # not an archive the engine can load either: it says so in its own words
    for entry in documents.get("manifest.json") or [] if isinstance(documents.get("manifest.json"), list) else []:
        if isinstance(entry, dict):
            found += [tag for tag in entry.get("RepoTags") or [] if isinstance(tag, str)]
    index = documents.get("index.json")
    for desc in index.get("manifests") or [] if isinstance(index, dict) else []:
        annotations = (desc.get("annotations") or {}) if isinstance(desc, dict) else {}
        name = annotations.get(im.CONTAINERD_NAME_ANNOTATION) or annotations.get(im.REF_NAME_ANNOTATION)
        if isinstance(name, str) and ("/" in name or ":" in name):
            found.append(name)
    return found


def check_load(user, environment, path, driver) -> None:
    """An import may not move names held by others either (``objects.names``)."""
    names = []
    for name in archive_names(path):
        try:
            names.append(str(parse(name)))
        except InvalidArgument:
            continue  # the engine refuses it
    objects.names(user, environment, names, driver, "images.import_export")


def save(user, environment, images):
    """Write the images to a tar that ``docker load`` accepts, to download from the operation.
    Each must be one the user may see; the task checks that each name still names it."""
    operations.authorize(user=user, environment=environment, action="image.save",
                         target_type="image")
    if not images:
        raise ValidationError("Select at least one image to export.")
    for image in images:
        if not has_permission(user, "images.view", environment, image):
            raise objects.no_such_image(image.name or image.short_id)
    names = [image.name or image.image_id for image in images]
    path = transfers_dir() / f"export-{uuid.uuid4().hex}.tar"
    return operations.start(
        user=user, environment=environment, action="image.save",
        target_type="image", target_name=", ".join(names)[:300],
        parameters={"names": names, "ids": [image.image_id for image in images], "path": str(path)},
    )


def check_export(user, environment, names, ids, driver) -> None:
    """As the export runs: each name still names the image that was picked, one the user may see."""
    for name, image_id in zip(names, ids, strict=True):
        try:
            data = driver.inspect_image(name)
        except EngineError:
            data = {}
        if data.get("Id") != image_id or not has_permission(user, "images.view", environment, ("image", image_id)):
            raise PermissionDenied(f"No such image: {name}")


def export_file(user, environment, pk) -> tuple[Path, object]:
    """(path, operation) of an export's tar, for the user who made it or an administrator;
    anyone else gets a 404, as if there were no such export."""
    from console.operations.models import Operation

    require(user, "images.import_export", environment)
    operation = Operation.objects.restrict(user, "operations.view", environment).filter(
        pk=pk, action="image.save", state=Operation.State.SUCCEEDED).first()
    if operation is None or (operation.user_id != user.pk and not is_administrator(user, environment)):
        raise Http404("No such export.")
    path = Path(operation.parameters["path"])
    if not path.is_file():
        raise Http404("This export has expired; export the images again.")
    return path, operation


def dockerfile_images(text: str) -> list[str]:
    """The image references a Dockerfile names (``FROM``, ``COPY --from``), as the engine's
    build reads them: global ``ARG`` defaults expanded, stage names and ``scratch`` left out."""
    try:
        instructions = df.parse(text)
    except InvalidArgument as exc:
        raise ValidationError({"dockerfile": str(exc)}) from None
    global_args: dict[str, str] = {}
    stages: list[str] = []
    refs: list[str] = []
    seen_from = False
    try:
        for ins in instructions:
            if ins.keyword == "ARG" and not seen_from:
                for key, value in df.key_values(ins, ins.args):
                    global_args[key] = value or ""
            elif ins.keyword == "FROM":
                seen_from = True
                words = df.split_words(df.expand(ins.args, global_args, ins))
                if not words:
                    continue
                if words[0] != "scratch" and words[0] not in stages:
                    refs.append(words[0])
                stages.append(words[2] if len(words) == 3 and words[1].lower() == "as" else "")
            elif ins.keyword == "COPY" and ins.flags.get("from"):
                source = ins.flags["from"]
                earlier = stages[:-1]
                if source not in earlier and not (source.isdigit() and int(source) < len(earlier)):
                    if not source.isdigit():
                        refs.append(source)
    except InvalidArgument as exc:
        raise ValidationError({"dockerfile": str(exc)}) from None
    return list(dict.fromkeys(refs))


def read_dockerfile(parameters: dict) -> str:
    """The Dockerfile a build will use: the one written in the page, or the context's own
    (a regular file named Dockerfile at its top; anything else is refused)."""
    path = Path(parameters["dockerfile"])
    if path.is_absolute():
        return path.read_text()
    context = Path(parameters["context"])
    if context.is_dir():
        raise ValidationError({"dockerfile": "Write a Dockerfile, or upload a context that holds one."})
    try:
        with tarfile.open(context, mode="r:*") as tar:
            found = None
            for member in tar:
                if member.name.removeprefix("./").strip("/") == "Dockerfile":
                    found = member  # the last one wins, as when the context is unpacked
            if found is None:
                raise ValidationError({"context": "The context has no Dockerfile at its top."})
            if not found.isreg() or found.size > DOCKERFILE_MAX:
                raise ValidationError({"context": "The context's Dockerfile must be a regular file "
                                                  "of at most 1 MiB."})
            return tar.extractfile(found).read().decode("utf-8", errors="replace")
    except (OSError, tarfile.TarError) as exc:
        raise ValidationError({"context": f"The context is not a tar: {exc}"}) from None


def check_build(user, environment, parameters: dict, driver) -> list[str]:
    """What a build names, as ``user`` may use it: its FROM and COPY --from images (one not
    here is fine when the user may pull, since the build pulls it) and its tags. Returns the
    references that name no local image (the build will pull them). Raises ValidationError."""
    missing = []
    for ref in dockerfile_images(read_dockerfile(parameters)):
        try:
            objects.image(user, environment, ref, driver, pull=True)
        except ValidationError as exc:
            raise ValidationError({"dockerfile": exc.messages}) from None
        if objects.present(driver, ref) is None:
            missing.append(ref)
    try:
        objects.names(user, environment, parameters["tags"], driver, "images.build")
    except ValidationError as exc:
        raise ValidationError({"tags": exc.messages}) from None
    return missing


def build(user, environment, dockerfile: str, tags: list[str], context=None, no_cache: bool = False):
    """Build from a Dockerfile written in the page, with an optional uploaded context tar.
    Its audit record names what was built: the Dockerfile (its text up to 16 KiB, and its
    digest) and the context's digest."""
    operations.authorize(user=user, environment=environment, action="image.build",
                         target_type="image")  # before writing anything
    refs = [normalize_reference(tag) for tag in tags]
    if not dockerfile.strip() and context is None:
        raise ValidationError({"dockerfile": "Write a Dockerfile, or upload a context that holds one."})
    work = transfers_dir() / f"build-{uuid.uuid4().hex}"
    work.mkdir(mode=0o700)
    parameters = {"work": str(work), "tags": refs, "no_cache": bool(no_cache)}
    try:
        if context is not None:
            digest = hashlib.sha256()
            with open(work / "context.tar", "wb") as out:
                for chunk in context.chunks():
                    digest.update(chunk)
                    out.write(chunk)
            parameters["context"] = str(work / "context.tar")
            parameters["context_sha256"] = "sha256:" + digest.hexdigest()
        else:
            (work / "context").mkdir()
            parameters["context"] = str(work / "context")
        if dockerfile.strip():
            (work / "Dockerfile").write_text(dockerfile)
            parameters["dockerfile"] = str(work / "Dockerfile")
        else:
            parameters["dockerfile"] = "Dockerfile"  # the one inside the uploaded context
        text = read_dockerfile(parameters)
        parameters["dockerfile_sha256"] = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        parameters["dockerfile_text"] = text[:AUDIT_DOCKERFILE_MAX]
        if len(text) > AUDIT_DOCKERFILE_MAX:
            parameters["dockerfile_truncated"] = True
        check_build(user, environment, parameters, _driver(environment))
        return operations.start(
            user=user, environment=environment, action="image.build",
            target_type="image", target_name=", ".join(refs) or "(untagged)", parameters=parameters,
        )
    except Exception:
        shutil.rmtree(work, ignore_errors=True)
        raise
