"""Giving a test user a role in an environment, as an administrator does on the access page."""

from __future__ import annotations

from console.access.models import Assignment
from console.access.roles import builtin_role


def grant(user, role_key, environment):
    Assignment.objects.create(user=user, role=builtin_role(role_key), environment=environment)
