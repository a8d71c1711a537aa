"""Who owns a resource made through the console, and who may see it.

A resource is (environment, kind, engine id): ``("image", "sha256:...")``,
``("container", "<id>")``. Its ``Ownership`` names the owner, the visibility
(public, administrators only, restricted) and, when restricted, the users and
teams it is shared with (the owner always counts).

A resource with no ``Ownership`` (made with ``python -m engine``, or before
ownership existed) is treated as *administrators only*: global administrators
and roles with the environment scope see it; the owned scope does not.

The hook for operations that create something: ``record_created(operation, kind,
engine_id)``. The runner calls ``record_from_result(operation, result, creates)`` after a
successful operation, which understands ``result["created"] = {"kind", "id"}``
and what the action declares it creates (console.operations.actions).

Who may change these records, and the change itself, are in ``console.access.sharing``
(above both this module and the permission checks, which read this one).

Images are content: anyone who builds or pulls the same bytes gets the same ID, so an
image's ID proves nothing about who made it. What a user did is recorded on the *names*
they put on images (``NAME_KIND`` rows keyed by the familiar name, ``busybox:latest``):
whoever put a name there holds it (with the same owner, users, teams and visibility as
any resource). A user sees an image through its own ownership or through a name they
hold, and moves or removes a name only when they hold it (``may_change_name``): making
an identical image never adds anyone to another owner's sharing list.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

# model label -> (kind, field holding the engine id)
KINDS: dict[str, tuple[str, str]] = {
    "inventory.Image": ("image", "image_id"),
    "inventory.Container": ("container", "container_id"),
    "inventory.Volume": ("volume", "name"),
    "inventory.Network": ("network", "network_id"),
}

NAME_KIND = "tag"  # an image's name (a tag or a repo digest), keyed by its familiar form


def name_key(text: str) -> str:
    """``busybox`` -> ``busybox:latest``: the form the mirror's repo_tags and repo_digests use."""
    from engine.images.reference import parse

    ref = parse(text)
    return ref.without_digest().familiar if ref.tag and ref.digest else ref.familiar


def register(model_label: str, kind: str, id_field: str) -> None:
    """Let ``restrict`` filter another inventory model by ownership."""
    KINDS[model_label] = (kind, id_field)


def kind_of(model) -> tuple[str, str] | None:
    return KINDS.get(model._meta.label)


def ownable_kinds() -> set[str]:
    return {kind for kind, _ in KINDS.values()}


def resource_key(resource) -> tuple[str, str] | None:
    """(kind, engine id) of a model instance or of a ``(kind, engine_id)`` pair.

    None for kinds that have no owner (a registry, an environment): the role alone decides.
    """
    if resource is None:
        return None
    if isinstance(resource, tuple):
        return resource if resource[0] in ownable_kinds() else None
    spec = kind_of(type(resource))
    if spec is None:
        raise ValueError(f"{type(resource).__name__} has no ownership kind; call ownership.register")
    return spec[0], getattr(resource, spec[1])


def visible_q(user) -> Q:
    """Ownership rows a user with the owned scope may see."""
    from console.access.models import Ownership

    named = Q(owner=user) | Q(users=user) | Q(teams__memberships__user=user)
    return Q(visibility=Ownership.Visibility.PUBLIC) | (Q(visibility=Ownership.Visibility.RESTRICTED) & named)


def visible_ids(user, environment, kind: str):
    from console.access.models import Ownership

    return (Ownership.objects.filter(environment=environment, kind=kind).filter(visible_q(user))
            .values("engine_id"))


def can_see(user, environment, kind: str, engine_id: str) -> bool:
    if visible_ids(user, environment, kind).filter(engine_id=engine_id).exists():
        return True
    return kind == "image" and engine_id in image_ids_named_for(user, environment)


def ownership_of(environment, kind: str, engine_id: str):
    from console.access.models import Ownership

    return Ownership.objects.filter(environment=environment, kind=kind, engine_id=engine_id).first()


def default_teams(user, environment):
    """The owner's teams that hold a role in ``environment``: they share what the owner makes there."""
    from console.accounts.models import Team

    return Team.objects.filter(memberships__user=user, role_assignments__environment=environment).distinct()


@transaction.atomic
def record_created(operation, kind: str, engine_id: str, *, visibility: str | None = None,
                   users=None, teams=None):
    """Record that ``operation`` made ``kind`` ``engine_id``; its user owns it.

    The visibility and who it is shared with come from the arguments, else from
    ``operation.parameters["access"]`` (``{"visibility", "users": [ids], "teams": [ids]}``),
    else: restricted to the owner and the owner's teams that hold a role in the
    environment. When the resource already has an owner (the same image pulled
    twice), it stays as it is: an identical image proves nothing about who made it (the
    names the new creator put on it are theirs: ``record_names``).
    """
    from console.access.models import Ownership
    from console.accounts.models import Team

    user = operation.user
    existing = (Ownership.objects.select_for_update()
                .filter(environment=operation.environment, kind=kind, engine_id=engine_id).first())
    if existing is not None:
        return existing
    access = (operation.parameters or {}).get("access") or {}
    visibility = visibility or access.get("visibility") or Ownership.Visibility.RESTRICTED
    if visibility not in Ownership.Visibility.values:
        visibility = Ownership.Visibility.RESTRICTED
    if visibility == Ownership.Visibility.ADMINISTRATORS and not (user and user.is_superuser):
        visibility = Ownership.Visibility.RESTRICTED  # only administrators hide things from themselves
    ownership = Ownership.objects.create(
        environment=operation.environment, kind=kind, engine_id=engine_id, owner=user,
        owner_name=user.get_username() if user else operation.username, visibility=visibility,
        operation=operation,
    )
    if users is None:
        users = access.get("users") or []
    if teams is None:
        team_ids = access.get("teams")
        teams = Team.objects.filter(pk__in=team_ids) if team_ids else (
            default_teams(user, operation.environment) if user else [])
    ownership.users.set(users)
    ownership.teams.set(teams)
    return ownership


def record_from_result(operation, result: dict, creates: tuple[str, str] | None = None) -> None:
    """Called by the runner after an operation succeeded: record what it created, if anything.

    A handler may say so itself with ``result["created"] = {"kind", "id"}``; otherwise
    ``creates`` (its action's ``(kind, result key)``, console.operations.actions) says where
    to look. A recreated container keeps the
    ownership of the one it replaces (``parameters["replace"]``).
    """
    if not isinstance(result, dict):
        return
    if operation.action.startswith("image."):
        record_names(operation, names_made(operation, result), pulled=operation.action == "image.pull")
    created = result.get("created")
    if isinstance(created, dict) and created.get("kind") and created.get("id"):
        record_created(operation, created["kind"], str(created["id"]))
        return
    spec = creates
    if not spec or not result.get(spec[1]):
        return
    kind, value = spec[0], result[spec[1]]
    ids = [str(item["id"]) for item in value if isinstance(item, dict) and item.get("id")] \
        if isinstance(value, list) else [str(value)]
    replaced = (operation.parameters or {}).get("replace")
    for engine_id in ids:
        if replaced and inherit(operation.environment, kind, str(replaced), engine_id):
            continue
        record_created(operation, kind, engine_id)


def names_made(operation, result: dict) -> list[str]:
    """The names an image operation put on images (not every name its image carries)."""
    parameters = operation.parameters or {}
    if operation.action == "image.pull":
        return [parameters["reference"]] if parameters.get("reference") else []
    if operation.action == "image.build":
        return list(parameters.get("tags") or [])
    if operation.action == "image.tag":
        return [parameters["target"]] if parameters.get("target") else []
    if operation.action == "image.load":
        return [tag for item in result.get("images") or [] if isinstance(item, dict)
                for tag in item.get("repo_tags") or []]
    return []


def record_names(operation, names, *, pulled: bool = False) -> None:
    """Record that ``operation``'s user put ``names`` on images. A name someone else holds
    stays theirs; a pull (whose content the name's registry decides, not the user) also
    makes the puller one of the holders of the name they pulled."""
    from console.access.models import Ownership

    user = operation.user
    for name in names:
        key = name_key(name)
        record = record_created(operation, NAME_KIND, key)
        if (pulled and user is not None and record.owner_id != user.pk
                and not Ownership.objects.filter(pk=record.pk).filter(visible_q(user)).exists()):
            record.users.add(user)


def holds_q(user) -> Q:
    """Ownership rows that name ``user`` as one of their holders (public alone is not enough)."""
    return Q(owner=user) | Q(users=user) | Q(teams__memberships__user=user)


def image_ids_named_for(user, environment) -> set[str]:
    """IDs of the images that carry a name ``user`` may see (``visible_q`` on its name record)."""
    from console.access.models import Ownership
    from console.inventory.models import Image

    names = set(Ownership.objects.filter(environment=environment, kind=NAME_KIND).filter(visible_q(user))
                .values_list("engine_id", flat=True))
    if not names:
        return set()
    near = Q()
    for name in names:  # a cheap pre-filter in SQL; the exact match is below
        near |= Q(search_text__contains=name.lower())
    return {image_id for image_id, tags, digests in
            Image.objects.filter(environment=environment).filter(near)
            .values_list("image_id", "repo_tags", "repo_digests")
            if not names.isdisjoint([*(tags or []), *(digests or [])])}


def visible_names(user, environment, rows) -> None:
    """Leave on each image row (not saved) only the names ``user`` may see: one seen through
    its own record, or, with no record, through the image's ownership. An image seen through
    one's own name does not show the names others put on it."""
    from console.access.models import Ownership

    rows = list(rows)
    names = {name for row in rows for name in [*(row.repo_tags or []), *(row.repo_digests or [])]}
    records = dict(Ownership.objects.filter(environment=environment, kind=NAME_KIND, engine_id__in=names)
                   .values_list("engine_id", "pk"))
    seen_records = set(Ownership.objects.filter(pk__in=records.values()).filter(visible_q(user))
                       .values_list("engine_id", flat=True))
    seen_images = set(visible_ids(user, environment, "image").filter(
        engine_id__in=[row.image_id for row in rows]).values_list("engine_id", flat=True))
    def seen(row, name):
        return name in seen_records or (name not in records and row.image_id in seen_images)

    for row in rows:
        row.repo_tags = [name for name in row.repo_tags or [] if seen(row, name)]
        repositories = {tag.rsplit(":", 1)[0] for tag in row.repo_tags}
        row.repo_digests = [name for name in row.repo_digests or []
                            if seen(row, name) or name.split("@", 1)[0] in repositories]
        row.name = row.repo_tags[0] if row.repo_tags else ""


def may_change_name(user, environment, name: str, image_id: str) -> bool:
    """May ``user`` (with an owned-scope role) move or remove ``name``, now on ``image_id``?
    Its holders may; a name with no record (made outside the console, or before names were
    recorded) goes with its image's own ownership. Public lets everyone use a name, not move it."""
    from console.access.models import Ownership

    record = ownership_of(environment, NAME_KIND, name_key(name))
    if record is not None:
        return Ownership.objects.filter(pk=record.pk).filter(holds_q(user)).exists()
    return Ownership.objects.filter(environment=environment, kind="image", engine_id=image_id).filter(
        holds_q(user)).exists()


def forget_names(environment, current: set[str]) -> None:
    """Drop the records of names no image carries any more (for reconcile)."""
    from console.access.models import Ownership

    stale = [pk for pk, name in Ownership.objects.filter(environment=environment, kind=NAME_KIND)
             .values_list("pk", "engine_id") if name not in current]
    Ownership.objects.filter(pk__in=stale).delete()


def inherit(environment, kind: str, old_id: str, new_id: str) -> bool:
    """The resource ``new_id`` replaces ``old_id``: it takes over its ownership. False if there was none."""
    from console.access.models import Ownership

    with transaction.atomic():
        old = Ownership.objects.filter(environment=environment, kind=kind, engine_id=old_id).first()
        if old is None:
            return False
        users, teams = list(old.users.all()), list(old.teams.all())
        new, _ = Ownership.objects.update_or_create(
            environment=environment, kind=kind, engine_id=new_id,
            defaults={"owner": old.owner, "owner_name": old.owner_name, "visibility": old.visibility,
                      "operation": old.operation})
        new.users.set(users)
        new.teams.set(teams)
    return True


def forget(environment, kind: str, engine_id: str) -> None:
    """The resource is gone from the engine: drop its ownership (reconcile may call this)."""
    from console.access.models import Ownership

    Ownership.objects.filter(environment=environment, kind=kind, engine_id=engine_id).delete()
