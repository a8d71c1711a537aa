"""Who owns a resource made through the console, and who may see it.

A resource is (environment, kind, engine id): ``("image", "sha256:...")``,
``("container", "<id>")``. Its ``Ownership`` names the owner, the visibility
(public, administrators only, restricted) and, when restricted, the users and
teams it is shared with (the owner always counts).

A resource with no ``Ownership`` (made with ``python -m engine``, or before
ownership existed) is treated as *administrators only*: global administrators
and roles with the environment scope see it; the owned scope does not.

The hook for operations that create something: ``record_created(operation, kind,
engine_id)``. The runner calls ``record_from_result(operation, result)`` after a
successful operation, which understands ``result["created"] = {"kind", "id"}``
and a few known actions.
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

# action -> (kind, key in the handler's result holding the new engine id, or a list of {"id"})
CREATING_ACTIONS: dict[str, tuple[str, str]] = {
    "image.pull": ("image", "image_id"),
    "image.build": ("image", "image_id"),
    "image.commit": ("image", "image_id"),
    "image.load": ("image", "images"),
    "container.create": ("container", "id"),
    "container.recreate": ("container", "id"),
    "container.run": ("container", "id"),
    "volume.create": ("volume", "name"),
    "network.create": ("network", "id"),
}


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
    return visible_ids(user, environment, kind).filter(engine_id=engine_id).exists()


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
    twice), the first owner stays and the new creator is added to those it is shared with.
    """
    from console.access.models import Ownership
    from console.accounts.models import Team

    user = operation.user
    existing = (Ownership.objects.select_for_update()
                .filter(environment=operation.environment, kind=kind, engine_id=engine_id).first())
    if existing is not None:
        if user is not None and existing.owner_id != user.pk and existing.visibility != Ownership.Visibility.PUBLIC:
            existing.users.add(user)
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


def record_from_result(operation, result: dict) -> None:
    """Called by the runner after an operation succeeded: record what it created, if anything.

    A handler may say so itself with ``result["created"] = {"kind", "id"}``; otherwise the
    actions of ``CREATING_ACTIONS`` are understood. A recreated container keeps the
    ownership of the one it replaces (``parameters["replace"]``).
    """
    if not isinstance(result, dict):
        return
    created = result.get("created")
    if isinstance(created, dict) and created.get("kind") and created.get("id"):
        record_created(operation, created["kind"], str(created["id"]))
        return
    spec = CREATING_ACTIONS.get(operation.action)
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


def can_change(user, environment, kind: str, engine_id: str) -> bool:
    """Global administrators and environment administrators change any ownership here;
    an owner changes their own resource's (but may not make it administrators-only)."""
    from console.access import catalog
    from console.access.permissions import access_for

    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or catalog.DANGEROUS_OPTIONS_ROLE in access_for(user, environment).roles:
        return True
    record = ownership_of(environment, kind, engine_id)
    return record is not None and record.owner_id == user.pk


@transaction.atomic
def change(by, environment, kind: str, engine_id: str, *, visibility: str, users=(), teams=(), owner=None):
    """Set who may see a resource. Refusals raise PermissionDenied and are audited."""
    from django.core.exceptions import PermissionDenied, ValidationError

    from console import audit
    from console.access import catalog
    from console.access.models import Ownership
    from console.access.permissions import access_for

    administrator = by.is_superuser or catalog.DANGEROUS_OPTIONS_ROLE in access_for(by, environment).roles
    if not can_change(by, environment, kind, engine_id) or (
            visibility == Ownership.Visibility.ADMINISTRATORS and not administrator) or (
            owner is not None and not administrator):
        audit.record(user=by, action=f"{kind}.ownership", environment=environment, target_type=kind,
                     target_id=engine_id, outcome="denied", details={"visibility": visibility})
        raise PermissionDenied("You may not change who owns this.")
    if visibility not in Ownership.Visibility.values:
        raise ValidationError({"visibility": "Pick a visibility."})
    record, _ = Ownership.objects.get_or_create(
        environment=environment, kind=kind, engine_id=engine_id,
        defaults={"owner": by, "owner_name": by.get_username()})
    if owner is not None:
        record.owner, record.owner_name = owner, owner.get_username()
    record.visibility = visibility
    record.save()
    record.users.set(users)
    record.teams.set(teams)
    from console.access.revocation import access_changed

    access_changed()  # anyone may have lost sight of it
    audit.record(user=by, action=f"{kind}.ownership", environment=environment, target_type=kind,
                 target_id=engine_id, details={"visibility": visibility, "owner": record.owner_name,
                                               "users": sorted(u.get_username() for u in users),
                                               "teams": sorted(t.name for t in teams)})
    return record
