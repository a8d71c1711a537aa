"""What the worker does for each image operation (see console.operations.runner)."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError

from console.access import objects, ownership
from console.images import services
from console.operations.runner import handler
from console.registries import access as registry_access
from console.registries import reach
from console.registries.models import Registry


def _registry_options(ctx) -> dict:
    """The credentials and transport a configured registry asks for (nothing without one), if
    the operation's user may still use them (else PermissionDenied: the operation is cancelled)."""
    registry_id = ctx.parameters.get("registry_id")
    registry = Registry.objects.filter(pk=registry_id).first() if registry_id else None
    return registry_access.credentials_for(ctx.operation, registry)


@handler("image.pull")
def pull(ctx):
    p = ctx.parameters
    host = reach.host_of(p["reference"])
    reach.check_in_task(host)
    with reach.errors_for(ctx.operation, host):
        image = ctx.driver.pull_image(p["reference"], platform=p.get("platform"), progress=ctx.progress,
                                      **_registry_options(ctx))
    return {"image_id": image["id"], "repo_tags": image["repo_tags"]}


@handler("image.push")
def push(ctx):
    p = ctx.parameters
    host = reach.host_of(p["target"])
    reach.check_in_task(host)
    with reach.errors_for(ctx.operation, host):
        digest = ctx.driver.push_image(p["source"], p["target"], progress=ctx.progress,
                                       **_registry_options(ctx))
    return {"digest": digest}


def _again(check, *args):
    """A service's check, again as the task runs: what the user may no longer do cancels it."""
    try:
        return check(*args)
    except ValidationError as exc:
        raise PermissionDenied(" ".join(exc.messages)) from None


@handler("image.tag")
def tag(ctx):
    op = ctx.operation
    _again(objects.names, op.user, op.environment, [ctx.parameters["target"]], ctx.driver, "images.tag")
    ctx.driver.tag_image(ctx.parameters["source"], ctx.parameters["target"])
    return {"tagged": ctx.parameters["target"]}


@handler("image.remove")
def remove(ctx):
    op, name = ctx.operation, ctx.parameters["name"]
    data = objects.present(ctx.driver, name)
    if data is not None:  # the names on it now, not those when it was asked
        tag = "" if name == data["Id"] else name
        services.check_removal(op.user, op.environment, data["Id"], data.get("RepoTags") or [], tag)
    lines = ctx.driver.remove_image(ctx.parameters["name"], force=ctx.parameters.get("force", False))
    for line in lines:
        ctx.line(line)
    return {"lines": lines}


@handler("image.prune")
def prune(ctx):
    removed, reclaimed = ctx.driver.prune_images(all=ctx.parameters.get("all", False))
    for image_id in removed:
        ctx.line(f"Deleted: {image_id}")
    return {"removed": removed, "reclaimed_bytes": reclaimed}


@handler("image.load")
def load(ctx):
    path = Path(ctx.parameters["path"])
    try:
        _again(services.check_load, ctx.operation.user, ctx.operation.environment, path, ctx.driver)
        with open(path, "rb") as tar:
            images = ctx.driver.load_images(tar)
    finally:
        path.unlink(missing_ok=True)
    for image in images:
        ctx.line(f"Loaded image: {', '.join(image['repo_tags']) or image['id']}")
    return {"images": [{"id": i["id"], "repo_tags": i["repo_tags"]} for i in images]}


@handler("image.save")
def save(ctx):
    path = Path(ctx.parameters["path"])
    op = ctx.operation
    if "ids" in ctx.parameters:
        services.check_export(op.user, op.environment, ctx.parameters["names"], ctx.parameters["ids"], ctx.driver)
    try:
        with open(path, "wb") as out:
            ctx.driver.save_images(ctx.parameters["names"], out)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return {"size": path.stat().st_size}


@handler("image.build")
def build(ctx):
    p, op = ctx.parameters, ctx.operation
    try:
        pulled = _again(services.check_build, op.user, op.environment, p, ctx.driver)
        image = ctx.driver.build_image(p["context"], p["dockerfile"], tags=p["tags"], on_line=ctx.line,
                                       no_cache=p.get("no_cache", False))
    finally:
        shutil.rmtree(p["work"], ignore_errors=True)
    for ref in pulled:  # the base images the build pulled are the user's, as if pulled on the page
        data = objects.present(ctx.driver, ref)
        if data is not None:
            ownership.record_created(op, "image", data["Id"])
            ownership.record_names(op, [ref], pulled=True)
    return {"image_id": image["id"], "repo_tags": image["repo_tags"]}
