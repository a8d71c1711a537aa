"""The permission check every view, service, websocket and Celery task calls.

- ``has_permission(user, permission, environment=None, resource=None)``: may the
  user do this here (to this resource)?
- ``require(...)``: the same, raising ``PermissionDenied``.
- ``restrict(queryset, user, permission, environment)``: the rows of a list the
  user may act on with ``permission`` (NetBox's ``restrict``). Callers write it
  ``Model.objects.restrict(user, permission, environment)`` (console.access.querysets);
  a detail view does ``get_object_or_404(Model.objects.restrict(...), pk=pk)`` so
  what is hidden is a 404. What a user holds is read once a request (console.access.cache).
- ``can_use_dangerous_options(user, environment)``: the host network, host bind
  mounts, no seccomp filter (see ``console.containers.services.dangerous_options``).

Who may do what: the global administrator (``is_superuser``) everything. Anyone
else: the union of the roles they hold in the environment, directly or through
their teams (``console.access.models.Assignment``). A role with the ``owned``
scope applies only to resources the user sees through ownership
(``console.access.ownership``). Inactive and anonymous users may do nothing.
Unknown permission names are refused (and logged), never granted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from console.access import cache, catalog, ownership
from console.access.catalog import SCOPE_ENVIRONMENT, SCOPE_OWNED

log = logging.getLogger(__name__)

# Names other code may use for a permission of the catalog.
ALIASES = {
    **{f"containers.{verb}": "containers.operate"
       for verb in ("start", "stop", "restart", "kill", "pause", "unpause", "resume")},
    "containers.rename": "containers.recreate",
    "containers.edit": "containers.recreate",
    "containers.exec": "containers.terminal",
    "containers.attach": "containers.terminal",
    "images.import": "images.import_export",
    "images.export": "images.import_export",
    "images.commit": "images.build",
}


def canonical(permission: str) -> str | None:
    name = ALIASES.get(permission, permission)
    return name if name in catalog.BY_NAME else None


def _active(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def assignments_of(user, environment=None):
    """Every assignment that applies to the user (directly or through a team), in one environment or all."""
    from console.access.models import Assignment

    qs = (Assignment.objects.filter(Q(user=user) | Q(team__memberships__user=user))
          .select_related("role", "team", "environment").distinct())
    if environment is not None:
        qs = qs.filter(environment=environment)
    return qs


def has_role(user, environment=None) -> bool:
    """Does ``user`` hold a role in ``environment`` (in any, when None)? Administrators do."""
    if not _active(user):
        return False
    return user.is_superuser or assignments_of(user, environment).exists()


@dataclass
class Access:
    """What one user may do in one environment (or anywhere, when environment is None), and why."""

    superuser: bool = False
    scopes: dict[str, str] = field(default_factory=dict)  # permission -> best scope
    reasons: dict[str, list] = field(default_factory=dict)  # permission -> [assignment, ...]
    roles: set[str] = field(default_factory=set)  # builtin keys held

    def scope(self, permission: str) -> str | None:
        if self.superuser:
            return SCOPE_ENVIRONMENT
        return self.scopes.get(permission)


def access_for(user, environment=None) -> Access:
    if not _active(user):
        return Access()
    if user.is_superuser:
        return Access(superuser=True, scopes=dict.fromkeys(catalog.NAMES, SCOPE_ENVIRONMENT))
    return cache.remembered(("access", user.pk, getattr(environment, "pk", None)),
                            lambda: _read_access(user, environment))


def _read_access(user, environment) -> Access:
    access = Access()
    for assignment in assignments_of(user, environment):
        role = assignment.role
        scope = role.effective_scope
        if role.builtin_key:
            access.roles.add(role.builtin_key)
        for name in role.permissions:
            if catalog.BY_NAME[name].environment_wide and scope != SCOPE_ENVIRONMENT:
                continue  # e.g. prune acts on everyone's images: not from an owned-scope role
            access.reasons.setdefault(name, []).append(assignment)
            if access.scopes.get(name) != SCOPE_ENVIRONMENT:
                access.scopes[name] = scope
    return access


def has_permission(user, permission: str, environment=None, resource=None) -> bool:
    """May ``user`` do ``permission`` in ``environment`` (to ``resource``, when given)?

    ``environment=None`` asks "anywhere" (for menus and global pages). ``resource`` is an
    inventory row (``Image``, ``Container``...) or a ``(kind, engine_id)`` pair.
    """
    name = canonical(permission)
    if name is None:
        log.warning("unknown permission %r refused", permission)
        return False
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    if catalog.BY_NAME[name].global_only:
        return False
    scope = access_for(user, environment).scope(name)
    if scope is None:
        return False
    key = ownership.resource_key(resource)
    if key is None or scope == SCOPE_ENVIRONMENT:
        return True
    if environment is None:
        environment = getattr(resource, "environment", None)
    return ownership.can_see(user, environment, *key)


def require(user, permission: str, environment=None, resource=None) -> None:
    if not has_permission(user, permission, environment, resource):
        raise PermissionDenied(f"You may not do {permission} here.")


def restrict(queryset, user, permission: str, environment):
    """The rows of ``queryset`` in ``environment`` that ``user`` may act on with ``permission``.

    Inventory models are filtered by ownership for owned-scope roles; operations by
    who started them. A model this module does not know gives nothing (fail closed).
    """
    model = queryset.model
    if any(f.name == "environment" for f in model._meta.get_fields()):
        queryset = queryset.filter(environment=environment)
    name = canonical(permission)
    if name is None or not _active(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    scope = access_for(user, environment).scope(name)
    if scope is None:
        return queryset.none()
    if scope == SCOPE_ENVIRONMENT:
        return queryset
    assert scope == SCOPE_OWNED
    if model._meta.label == "operations.Operation":
        return queryset.filter(user=user)
    spec = ownership.kind_of(model)
    if spec is None:
        return queryset.none()
    kind, id_field = spec
    visible = Q(**{f"{id_field}__in": ownership.visible_ids(user, environment, kind)})
    if kind == "image":  # and the images that carry a name the user holds
        visible |= Q(**{f"{id_field}__in": ownership.image_ids_named_for(user, environment)})
    return queryset.filter(visible)


def can_use_dangerous_options(user, environment) -> bool:
    """The host network, host bind mounts, no seccomp filter (containers.services.
    dangerous_options): global administrators and the environment's administrators only."""
    return is_administrator(user, environment)


def is_administrator(user, environment) -> bool:
    """Global administrators and the environment's administrators (active ones)."""
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    return environment is not None and catalog.DANGEROUS_OPTIONS_ROLE in access_for(user, environment).roles


def environment_ids_for(user, permission: str) -> set[int] | None:
    """The environments where ``user`` holds ``permission`` (None means all: an administrator)."""
    if not _active(user):
        return set()
    if user.is_superuser:
        return None
    name = canonical(permission)
    if name is None:
        return set()
    ids = set()
    for assignment in assignments_of(user):
        role = assignment.role
        if name in role.permissions and (not catalog.BY_NAME[name].environment_wide
                                         or role.effective_scope == SCOPE_ENVIRONMENT):
            ids.add(assignment.environment_id)
    return ids
