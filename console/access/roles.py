"""The built-in roles' rows: made at migrate time, and again if a test flushed them."""

from __future__ import annotations

from console.access import catalog


def ensure_builtin_roles() -> None:
    from console.access.models import Role

    if Role.objects.filter(builtin_key__in=catalog.BUILTIN_BY_KEY).count() == len(catalog.BUILTIN_ROLES):
        return
    for spec in catalog.BUILTIN_ROLES:
        Role.objects.update_or_create(
            builtin_key=spec.key,
            defaults={"name": spec.name, "description": spec.description, "scope": spec.scope},
        )


def builtin_role(key: str):
    from console.access.models import Role

    ensure_builtin_roles()
    return Role.objects.get(builtin_key=key)


def grant(holder, role, environment):
    """Give ``holder`` (a user or a team) ``role`` (a Role or a built-in key) in ``environment``."""
    from console.access.models import Assignment
    from console.accounts.models import Team

    if isinstance(role, str):
        role = builtin_role(role)
    field = "team" if isinstance(holder, Team) else "user"
    assignment, _ = Assignment.objects.get_or_create(role=role, environment=environment, **{field: holder})
    return assignment
