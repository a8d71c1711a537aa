"""The permission check every service calls before it acts.

Permissions are named per action (``images.pull``, ``containers.start``...).
Until roles and assignments arrive (issue 8), the rule is simple and strict:
administrators may do everything; other signed-in users may only view.
Views, websockets and Celery tasks all call ``require`` (never a template).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

VIEW_PERMISSIONS = frozenset({
    "containers.view", "images.view", "registries.view", "volumes.view", "networks.view",
    "operations.view",
})


def has_permission(user, permission: str, environment=None) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return permission in VIEW_PERMISSIONS


def require(user, permission: str, environment=None) -> None:
    if not has_permission(user, permission, environment):
        raise PermissionDenied(f"You may not do {permission} here.")
