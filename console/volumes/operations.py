"""What the worker does for each volume operation."""

from console.operations.runner import handler


@handler("volume.create")
def create(ctx):
    volume = ctx.driver.create_volume(ctx.parameters["name"], labels=ctx.parameters.get("labels") or None)
    return {"name": volume["Name"]}


@handler("volume.remove")
def remove(ctx):
    ctx.driver.remove_volume(ctx.parameters["name"], force=ctx.parameters.get("force", False))
    return {"removed": ctx.parameters["name"]}


@handler("volume.prune")
def prune(ctx):
    removed, reclaimed = ctx.driver.prune_volumes()
    for name in removed:
        ctx.line(f"Deleted: {name}")
    return {"removed": removed, "reclaimed_bytes": reclaimed}
