"""What the worker does for each container operation (see console.operations.runner)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from console.access import ownership
from console.containers.services import check_dangerous_options, check_objects
from console.operations.runner import handler
from engine.errors import NotFound


@handler("container.create")
def create(ctx):
    # Again as it runs: the user may have lost the environment administrator role, or sight
    # of the image, a volume or the network, meanwhile; or a name may have moved.
    user, environment = ctx.operation.user, ctx.operation.environment
    check_dangerous_options(user, environment, ctx.parameters["spec"])
    try:
        spec, new_volumes = check_objects(user, environment, ctx.parameters["spec"], ctx.driver)
    except ValidationError as exc:
        raise PermissionDenied(" ".join(exc.messages)) from None
    created = ctx.driver.create_container(spec)
    for name in new_volumes:  # made by this create: the user's, as if made on the volumes page
        ownership.record_created(ctx.operation, "volume", name)
    ctx.line(f"Created {created['name']} ({created['id'][:12]})")
    if ctx.parameters.get("start"):
        ctx.driver.start_container(created["id"])
        ctx.line(f"Started {created['name']}")
    return created


@handler("container.recreate")
def recreate(ctx):
    old = ctx.parameters["replace"]
    try:
        ctx.driver.remove_container(old, force=True)
        ctx.line(f"Removed the old container {old[:12]}")
    except NotFound:
        ctx.line(f"The old container {old[:12]} was already gone")
    return create(ctx)


def _simple(verb: str, call):
    @handler(f"container.{verb}")
    def run(ctx):
        call(ctx.driver, ctx.parameters)
        return {"done": verb}
    return run


_simple("start", lambda d, p: d.start_container(p["ref"]))
_simple("stop", lambda d, p: d.stop_container(p["ref"], p.get("timeout")))
_simple("restart", lambda d, p: d.restart_container(p["ref"], p.get("timeout")))
_simple("kill", lambda d, p: d.kill_container(p["ref"], p.get("signal")))
_simple("pause", lambda d, p: d.pause_container(p["ref"]))
_simple("unpause", lambda d, p: d.unpause_container(p["ref"]))
_simple("remove", lambda d, p: d.remove_container(p["ref"], force=p.get("force", False)))


@handler("container.rename")
def rename(ctx):
    ctx.driver.rename_container(ctx.parameters["ref"], ctx.parameters["name"])
    return {"name": ctx.parameters["name"]}
