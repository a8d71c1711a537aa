"""What the worker does for each image operation (see console.operations.runner)."""

from __future__ import annotations

import shutil
from pathlib import Path

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


@handler("image.pull", permission="images.pull", reconcile=("images",))
def pull(ctx):
    p = ctx.parameters
    host = reach.host_of(p["reference"])
    reach.check_in_task(host)
    with reach.errors_for(ctx.operation, host):
        image = ctx.driver.pull_image(p["reference"], platform=p.get("platform"), progress=ctx.progress,
                                      **_registry_options(ctx))
    return {"image_id": image["id"], "repo_tags": image["repo_tags"]}


@handler("image.push", permission="images.push", reconcile=("images",))
def push(ctx):
    p = ctx.parameters
    host = reach.host_of(p["target"])
    reach.check_in_task(host)
    with reach.errors_for(ctx.operation, host):
        digest = ctx.driver.push_image(p["source"], p["target"], progress=ctx.progress,
                                       **_registry_options(ctx))
    return {"digest": digest}


@handler("image.tag", permission="images.tag", reconcile=("images",))
def tag(ctx):
    ctx.driver.tag_image(ctx.parameters["source"], ctx.parameters["target"])
    return {"tagged": ctx.parameters["target"]}


@handler("image.remove", permission="images.remove", reconcile=("images",))
def remove(ctx):
    lines = ctx.driver.remove_image(ctx.parameters["name"], force=ctx.parameters.get("force", False))
    for line in lines:
        ctx.line(line)
    return {"lines": lines}


@handler("image.prune", permission="images.prune", reconcile=("images",))
def prune(ctx):
    removed, reclaimed = ctx.driver.prune_images(all=ctx.parameters.get("all", False))
    for image_id in removed:
        ctx.line(f"Deleted: {image_id}")
    return {"removed": removed, "reclaimed_bytes": reclaimed}


@handler("image.load", permission="images.import_export", reconcile=("images",))
def load(ctx):
    path = Path(ctx.parameters["path"])
    try:
        with open(path, "rb") as tar:
            images = ctx.driver.load_images(tar)
    finally:
        path.unlink(missing_ok=True)
    for image in images:
        ctx.line(f"Loaded image: {', '.join(image['repo_tags']) or image['id']}")
    return {"images": [{"id": i["id"], "repo_tags": i["repo_tags"]} for i in images]}


@handler("image.save", permission="images.import_export")
def save(ctx):
    path = Path(ctx.parameters["path"])
    try:
        with open(path, "wb") as out:
            ctx.driver.save_images(ctx.parameters["names"], out)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return {"size": path.stat().st_size}


@handler("image.build", permission="images.build", reconcile=("images",))
def build(ctx):
    p = ctx.parameters
    try:
        image = ctx.driver.build_image(p["context"], p["dockerfile"], tags=p["tags"], on_line=ctx.line,
                                       no_cache=p.get("no_cache", False))
    finally:
        shutil.rmtree(p["work"], ignore_errors=True)
    return {"image_id": image["id"], "repo_tags": image["repo_tags"]}
