"""Users, teams, roles and assignments: the only way pages change them.

Each function checks who may do it (``users.manage`` is the global
administrator's; a team leader may add and remove plain members of their own
team), validates, audits and saves. A refusal is audited too.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from console import audit
from console.access import catalog
from console.access.models import Assignment, Role
from console.access.permissions import has_permission
from console.access.revocation import access_changed
from console.accounts.models import Membership, Team

User = get_user_model()


def _manage(by, action: str, target_type: str, target_name: str = "", target_id="") -> None:
    if not has_permission(by, "users.manage"):
        audit.record(user=by, action=action, target_type=target_type, target_id=str(target_id),
                     target_name=target_name, outcome="denied")
        raise PermissionDenied("Only administrators manage users, teams and roles.")


def _done(by, action: str, target_type: str, target, details=None) -> None:
    audit.record(user=by, action=action, target_type=target_type, target_id=str(target.pk),
                 target_name=str(target), details=details or {})


def is_leader(user, team) -> bool:
    return Membership.objects.filter(team=team, user=user, is_leader=True).exists()


def can_manage_members(user, team) -> bool:
    return has_permission(user, "users.manage") or (user.is_active and is_leader(user, team))


# Users

def create_user(by, *, username: str, password: str, email: str = "", is_superuser: bool = False):
    _manage(by, "user.create", "user", username)
    username = username.strip()
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "A user with that name exists."})
    candidate = User(username=username, email=email)
    try:
        password_validation.validate_password(password, candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    user = User.objects.create_user(username, email=email, password=password, is_superuser=is_superuser,
                                    is_staff=False)
    _done(by, "user.create", "user", user, {"administrator": is_superuser})
    return user


def _last_administrator(user) -> bool:
    return (user.is_superuser and user.is_active
            and not User.objects.filter(is_superuser=True, is_active=True).exclude(pk=user.pk).exists())


def update_user(by, user, *, email: str, is_active: bool, is_superuser: bool):
    _manage(by, "user.update", "user", user.username, user.pk)
    if (not is_active or not is_superuser) and _last_administrator(user):
        raise ValidationError("This is the last active administrator: make another one first.")
    if user.pk == by.pk and not is_active:
        raise ValidationError("You cannot disable yourself.")
    changes = {k: v for k, v in {"email": email, "is_active": is_active, "is_superuser": is_superuser}.items()
               if getattr(user, k) != v}
    for key, value in changes.items():
        setattr(user, key, value)
    user.save(update_fields=list(changes) or None)
    details = dict(changes)
    if changes.get("is_active") is False:
        # Disabled: signed out everywhere now, so that enabling them again revives nothing.
        details["sessions_ended"] = end_sessions(user)
    _done(by, "user.update", "user", user, details)
    if changes.get("is_active") is False or changes.get("is_superuser") is False:
        access_changed([user])  # their open sockets check again, and close
    return user


def end_sessions(user) -> int:
    """Delete every session signed in as ``user`` (the database session store); how many."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    ended = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            ended.append(session.pk)
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


def reset_password(by, user, password: str):
    _manage(by, "user.reset_password", "user", user.username, user.pk)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    user.set_password(password)  # also ends the user's other sessions (their hash changes)
    user.save(update_fields=["password"])
    _done(by, "user.reset_password", "user", user)
    access_changed([user])


def turn_off_two_factor(by, user):
    """For a user who lost their authenticator: they sign in with the password alone again."""
    from console.accounts import twofactor

    _manage(by, "user.two_factor_off", "user", user.username, user.pk)
    twofactor.disable(user)
    _done(by, "user.two_factor_off", "user", user)


# Teams

def create_team(by, *, name: str, description: str = ""):
    _manage(by, "team.create", "team", name)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the team a name."})
    if Team.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": "A team with that name exists."})
    team = Team.objects.create(name=name, description=description)
    _done(by, "team.create", "team", team)
    return team


def delete_team(by, team):
    _manage(by, "team.delete", "team", team.name, team.pk)
    _done(by, "team.delete", "team", team)
    members = list(team.members.all())
    team.delete()
    access_changed(members)


def add_member(by, team, user, *, leader: bool = False):
    """Administrators add anyone (leader or not); a leader adds plain members to their own team."""
    allowed = has_permission(by, "users.manage") or (not leader and by.is_active and is_leader(by, team))
    if not allowed:
        audit.record(user=by, action="team.add_member", target_type="team", target_id=str(team.pk),
                     target_name=team.name, outcome="denied", details={"user": user.username})
        raise PermissionDenied("Only administrators and this team's leaders manage its members.")
    membership, created = Membership.objects.get_or_create(team=team, user=user,
                                                           defaults={"is_leader": leader})
    if not created and membership.is_leader != leader and has_permission(by, "users.manage"):
        membership.is_leader = leader
        membership.save(update_fields=["is_leader"])
    _done(by, "team.add_member", "team", team, {"user": user.username, "leader": membership.is_leader})
    return membership


def remove_member(by, team, user):
    """Administrators remove anyone; a leader removes plain members (and themselves)."""
    membership = Membership.objects.filter(team=team, user=user).first()
    allowed = has_permission(by, "users.manage") or (
        by.is_active and is_leader(by, team) and membership is not None
        and (not membership.is_leader or user.pk == by.pk))
    if not allowed:
        audit.record(user=by, action="team.remove_member", target_type="team", target_id=str(team.pk),
                     target_name=team.name, outcome="denied", details={"user": user.username})
        raise PermissionDenied("Only administrators and this team's leaders manage its members.")
    if membership is not None:
        membership.delete()
        _done(by, "team.remove_member", "team", team, {"user": user.username})
        access_changed([user])


# Roles

def _clean_role(name: str, scope: str, permissions) -> tuple[str, str, list[str]]:
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the role a name."
    if scope not in catalog.SCOPES:
        errors["scope"] = "Pick a scope."
    unknown = set(permissions) - set(catalog.ASSIGNABLE)
    if unknown:
        errors["permissions"] = f"Not permissions a role can hold: {', '.join(sorted(unknown))}."
    elif not permissions:
        errors["permissions"] = "Pick at least one permission."
    if errors:
        raise ValidationError(errors)
    return name, scope, sorted(set(permissions), key=catalog.NAMES.index)


def create_role(by, *, name: str, description: str = "", scope: str, permissions):
    _manage(by, "role.create", "role", name)
    name, scope, permissions = _clean_role(name, scope, permissions)
    if Role.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": "A role with that name exists."})
    role = Role.objects.create(name=name, description=description, scope=scope, stored_permissions=permissions)
    _done(by, "role.create", "role", role, {"scope": scope, "permissions": permissions})
    return role


def update_role(by, role, *, name: str, description: str = "", scope: str, permissions):
    _manage(by, "role.update", "role", role.name, role.pk)
    if role.builtin:
        raise ValidationError("Built-in roles cannot be changed; make a custom role instead.")
    name, scope, permissions = _clean_role(name, scope, permissions)
    if Role.objects.filter(name__iexact=name).exclude(pk=role.pk).exists():
        raise ValidationError({"name": "A role with that name exists."})
    role.name, role.description, role.scope, role.stored_permissions = name, description, scope, permissions
    role.save()
    _done(by, "role.update", "role", role, {"scope": scope, "permissions": permissions})
    access_changed()
    return role


def delete_role(by, role):
    _manage(by, "role.delete", "role", role.name, role.pk)
    if role.builtin:
        raise ValidationError("Built-in roles cannot be deleted.")
    _done(by, "role.delete", "role", role)
    role.delete()
    access_changed()


# Assignments

def assign(by, *, role, environment, user=None, team=None):
    holder = user or team
    _manage(by, "role.assign", "user" if user else "team", str(holder), getattr(holder, "pk", ""))
    if (user is None) == (team is None):
        raise ValidationError("Pick a user or a team.")
    try:
        with transaction.atomic():
            assignment = Assignment.objects.create(role=role, environment=environment, user=user, team=team,
                                                   created_by=by.get_username())
    except IntegrityError:
        raise ValidationError(f"{holder} already holds {role} in {environment}.") from None
    audit.record(user=by, action="role.assign", environment=environment, target_type="user" if user else "team",
                 target_id=str(holder.pk), target_name=str(holder), details={"role": role.name})
    return assignment


def unassign(by, assignment):
    holder = assignment.holder
    _manage(by, "role.unassign", "user" if assignment.user_id else "team", str(holder), holder.pk)
    audit.record(user=by, action="role.unassign", environment=assignment.environment,
                 target_type="user" if assignment.user_id else "team", target_id=str(holder.pk),
                 target_name=str(holder), details={"role": assignment.role.name})
    concerned = [assignment.user] if assignment.user_id else list(assignment.team.members.all())
    assignment.delete()
    access_changed(concerned)


# Effective access

def effective_access(user):
    """For each environment: every permission the user holds there, and why.

    ``[{"environment", "administrator", "permissions": [{"name", "label", "scope", "reasons": [text]}],
    "assignments": [...], "dangerous_options": bool}]``
    """
    from console.access.permissions import access_for, assignments_of, can_use_dangerous_options
    from console.core.models import Environment

    rows = []
    assignments = list(assignments_of(user))
    for environment in Environment.objects.order_by("name"):
        access = access_for(user, environment)
        permissions = []
        for spec in catalog.PERMISSIONS:
            scope = access.scope(spec.name)
            if scope is None:
                continue
            if access.superuser:
                reasons = ["global administrator"]
            else:
                reasons = [_reason(a, user) for a in access.reasons.get(spec.name, [])]
            permissions.append({"name": spec.name, "label": spec.label, "scope": scope, "reasons": reasons})
        rows.append({
            "environment": environment, "administrator": access.superuser and user.is_active,
            "active": user.is_active, "permissions": permissions,
            "assignments": [a for a in assignments if a.environment_id == environment.pk],
            "dangerous_options": can_use_dangerous_options(user, environment),
        })
    return rows


def _reason(assignment, user) -> str:
    if assignment.team_id:
        return f"{assignment.role.name} through team {assignment.team.name}"
    return f"{assignment.role.name} (assigned directly)"
