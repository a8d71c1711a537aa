"""Every operation's facts, declared once.

Services and handlers name an action ("image.pull"); what it needs and does is read here:
the permission (checked by the service that starts it, again by the runner when its task
runs, and to cancel it), the mirror tables the runner reconciles after it, what it creates
(the runner records its owner), and whether a user may stop it half-way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str
    permission: str
    reconcile: tuple[str, ...] = ()  # mirror tables to bring up to date after it ran
    creates: tuple[str, str] | None = None  # (ownership kind, the result's key holding the id or ids)
    cancellable: bool = False  # long work a user can stop half-way


ACTIONS: dict[str, Action] = {}


def declare(*actions: Action) -> None:
    for action in actions:
        ACTIONS[action.name] = action


def get(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise LookupError(f"Unknown action {name!r}.") from None


# Containers hold volumes and sit on networks: their "used by" follow them.
CONTAINER_TABLES = ("containers", "volumes", "networks")
CONTAINER_VERBS = ("start", "stop", "restart", "kill", "pause", "unpause", "remove")

declare(
    Action("image.pull", "images.pull", ("images",), creates=("image", "image_id"), cancellable=True),
    Action("image.push", "images.push", ("images",), cancellable=True),
    Action("image.tag", "images.tag", ("images",)),
    Action("image.remove", "images.remove", ("images",)),
    Action("image.prune", "images.prune", ("images",)),
    Action("image.load", "images.import_export", ("images",), creates=("image", "images"), cancellable=True),
    Action("image.save", "images.import_export", cancellable=True),
    Action("image.build", "images.build", ("images",), creates=("image", "image_id"), cancellable=True),
    Action("container.create", "containers.create", CONTAINER_TABLES, creates=("container", "id")),
    Action("container.recreate", "containers.recreate", CONTAINER_TABLES, creates=("container", "id")),
    Action("container.rename", "containers.recreate", CONTAINER_TABLES),
    *(Action(f"container.{verb}", "containers.remove" if verb == "remove" else "containers.operate",
             CONTAINER_TABLES) for verb in CONTAINER_VERBS),
    Action("volume.create", "volumes.create", ("volumes",), creates=("volume", "name")),
    Action("volume.remove", "volumes.remove", ("volumes",)),
    Action("volume.prune", "volumes.prune", ("volumes",)),
    Action("network.create", "networks.create", ("networks",), creates=("network", "id")),
    Action("network.remove", "networks.remove", ("networks",)),
    Action("network.prune", "networks.prune", ("networks",)),
    Action("registry.test", "registries.use"),
    Action("registry.browse", "registries.use"),
    Action("registry.tags", "registries.use"),
)
