"""Who may change who sees a resource, and the change itself (the ownership page).

``console.access.ownership`` holds the records and what they let a user see, which the
permission checks (``console.access.permissions``) read; this module sits above both.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from console.access.ownership import NAME_KIND, ownership_of
from console.access.permissions import is_administrator


def can_change(user, environment, kind: str, engine_id: str) -> bool:
    """Global administrators and environment administrators change any ownership here;
    an owner changes their own resource's (but may not make it administrators-only)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if is_administrator(user, environment):
        return True
    record = ownership_of(environment, kind, engine_id)
    return record is not None and record.owner_id == user.pk


def assignable_users(by, environment):
    """Whom ``by`` may name as owner or share a resource with: administrators anyone active;
    others themselves and their teammates (nobody learns of the other accounts)."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(is_active=True)
    if not is_administrator(by, environment):
        users = users.filter(Q(pk=by.pk) | Q(memberships__team__memberships__user=by))
    return users.distinct().order_by("username")


def assignable_teams(by, environment):
    """The teams ``by`` may share a resource with: administrators any; others their own."""
    from console.accounts.models import Team

    teams = Team.objects.all()
    if not is_administrator(by, environment):
        teams = teams.filter(memberships__user=by)
    return teams.distinct().order_by("name")


@transaction.atomic
def change(by, environment, kind: str, engine_id: str, *, visibility: str, users=(), teams=(), owner=None):
    """Set who may see a resource. Refusals raise PermissionDenied and are audited.

    ``users`` and ``teams`` must be among ``assignable_users`` / ``assignable_teams`` of ``by``;
    those the resource is shared with that ``by`` cannot see stay as they are. An image's
    change also applies to the names its owner put on it (``NAME_KIND``)."""
    from django.core.exceptions import PermissionDenied, ValidationError

    from console import audit
    from console.access.models import Ownership

    administrator = is_administrator(by, environment)
    if not can_change(by, environment, kind, engine_id) or (
            visibility == Ownership.Visibility.ADMINISTRATORS and not administrator) or (
            owner is not None and not administrator):
        audit.record(user=by, action=f"{kind}.ownership", environment=environment, target_type=kind,
                     target_id=engine_id, outcome="denied", details={"visibility": visibility})
        raise PermissionDenied("You may not change who owns this.")
    if visibility not in Ownership.Visibility.values:
        raise ValidationError({"visibility": "Pick a visibility."})
    may_users, may_teams = assignable_users(by, environment), assignable_teams(by, environment)
    users, teams = list(users), list(teams)
    if any(not may_users.filter(pk=u.pk).exists() for u in users):
        raise ValidationError({"users": "Pick among yourself and your teammates."})
    if any(not may_teams.filter(pk=t.pk).exists() for t in teams):
        raise ValidationError({"teams": "Pick among your teams."})
    record, _ = Ownership.objects.get_or_create(
        environment=environment, kind=kind, engine_id=engine_id,
        defaults={"owner": by, "owner_name": by.get_username()})
    # Whom ``by`` cannot see or name stays shared: leaving them out of a form removes no one.
    users += list(record.users.exclude(pk__in=may_users.values("pk")))
    teams += list(record.teams.exclude(pk__in=may_teams.values("pk")))
    previous_owner_id = record.owner_id
    if owner is not None:
        record.owner, record.owner_name = owner, owner.get_username()
    record.visibility = visibility
    record.save()
    record.users.set(users)
    record.teams.set(teams)
    if kind == "image":
        _apply_to_names(record, previous_owner_id, users, teams)
    from console.access.revocation import access_changed

    access_changed()  # anyone may have lost sight of it
    audit.record(user=by, action=f"{kind}.ownership", environment=environment, target_type=kind,
                 target_id=engine_id, details={"visibility": visibility, "owner": record.owner_name,
                                               "users": sorted(u.get_username() for u in users),
                                               "teams": sorted(t.name for t in teams)})
    return record


def _apply_to_names(image_record, previous_owner_id, users, teams) -> None:
    """The names the image's owner put on it see the same change (others' names stay theirs)."""
    from console.access.models import Ownership
    from console.inventory.models import Image

    row = Image.objects.filter(environment=image_record.environment, image_id=image_record.engine_id).first()
    if row is None:
        return
    names = [*(row.repo_tags or []), *(row.repo_digests or [])]
    for record in Ownership.objects.filter(environment=image_record.environment, kind=NAME_KIND,
                                           engine_id__in=names, owner_id=previous_owner_id):
        record.owner, record.owner_name = image_record.owner, image_record.owner_name
        record.visibility = image_record.visibility
        record.save()
        record.users.set(users)
        record.teams.set(teams)
