"""Who may see a registry and use its stored credentials.

Each registry says who may use its credentials (``Registry.use``): its owner (who added
it), its owner and chosen teams, or everyone. That decides for roles with the *owned*
scope; global administrators and roles with the environment scope use every registry.
An owned-scope user sees (``registries.view``) only the registries they may use: the
others are a 404, as any resource they may not see.

Every place that decrypts a registry's credentials goes through ``credentials_for``
(the registry operations, the image pull and push tasks), which checks again when the
task runs. A user who may not use a registry is refused (audited), never silently
downgraded to anonymous: a pull "as written" without picking a registry is anonymous
anyway, because credentials are only ever chosen by registry, never by host.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from console import audit
from console.access.catalog import SCOPE_ENVIRONMENT
from console.access.permissions import access_for, has_permission
from console.registries.models import Registry


def _scope(user, permission: str, environment) -> str | None:
    if not has_permission(user, permission, environment):
        return None
    return access_for(user, environment).scope(permission)


def usable_q(user) -> Q:
    """Registries an owned-scope user may use: public ones, their own, their teams'."""
    return (Q(use=Registry.Use.EVERYONE) | Q(created_by=user)
            | Q(use=Registry.Use.TEAMS, teams__memberships__user=user))


def restrict(queryset, user, permission: str, environment):
    """The registries of ``queryset`` that ``user`` may act on with ``permission`` here."""
    scope = _scope(user, permission, environment)
    if scope is None:
        return queryset.none()
    if scope == SCOPE_ENVIRONMENT:
        return queryset
    return queryset.filter(pk__in=Registry.objects.filter(usable_q(user)).values("pk"))


def visible(user, environment):
    return Registry.objects.restrict(user, "registries.view", environment)


def usable(user, environment):
    return Registry.objects.restrict(user, "registries.use", environment)


def may_use(user, environment, registry: Registry) -> bool:
    return usable(user, environment).filter(pk=registry.pk).exists()


def check_use(user, environment, registry: Registry) -> None:
    """Raise PermissionDenied unless ``user`` may use ``registry``'s credentials (for
    ``operations.start(check=...)``, which audits the refusal)."""
    if not may_use(user, environment, registry):
        raise PermissionDenied(f"You may not use the credentials of {registry.name}.")


def require_use(user, environment, registry: Registry, action: str = "registry.use") -> None:
    """``check_use``, the refusal audited here."""
    try:
        check_use(user, environment, registry)
    except PermissionDenied:
        audit.record(user=user, action=action, environment=environment, target_type="registry",
                     target_id=str(registry.pk), target_name=registry.name, outcome="denied")
        raise


def credentials_for(operation, registry: Registry | None) -> dict:
    """What the engine wants to reach ``registry`` for ``operation``'s user: its credentials
    and transport ({} without a registry). Checked again here because a task runs later."""
    if registry is None:
        return {}
    if not may_use(operation.user, operation.environment, registry):
        raise PermissionDenied(f"{operation.username or 'This user'} may no longer use the credentials "
                               f"of {registry.name}.")
    return {"credentials": registry.credentials(), "insecure": registry.engine_insecure}
