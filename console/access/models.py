"""Roles, who holds them where, and who owns what.

- ``Role``: a built-in role (its permissions come from ``catalog``, so they can't
  drift from the published matrix) or a custom one (its permissions are stored).
- ``Assignment``: a user or a team holds a role in an environment. The union of
  every assignment that applies is what the user may do.
- ``Ownership``: who owns a resource made through the console, and who may see it.
  Keyed by (environment, kind, engine id) so the inventory models stay as they are.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from console.access import catalog
from console.core.models import Environment


class Role(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    builtin_key = models.CharField(max_length=40, blank=True, default="")
    scope = models.CharField(max_length=20, choices=list(catalog.SCOPES.items()),
                             default=catalog.SCOPE_OWNED)
    stored_permissions = models.JSONField(default=list, blank=True)  # custom roles only
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["builtin_key", "name"]
        constraints = [models.UniqueConstraint(fields=["builtin_key"], condition=~Q(builtin_key=""),
                                               name="uniq_builtin_role")]

    def __str__(self) -> str:
        return self.name

    @property
    def builtin(self) -> bool:
        return bool(self.builtin_key)

    @property
    def spec(self) -> catalog.BuiltinRole | None:
        return catalog.BUILTIN_BY_KEY.get(self.builtin_key)

    @property
    def effective_scope(self) -> str:
        return self.spec.scope if self.spec else self.scope

    @property
    def permissions(self) -> frozenset[str]:
        """What the role grants; permissions unknown to the catalog grant nothing."""
        if self.builtin:
            return self.spec.permissions if self.spec else frozenset()
        return frozenset(self.stored_permissions) & set(catalog.ASSIGNABLE)


class Assignment(models.Model):
    """A user or a team holds a role in an environment."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="assignments")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="role_assignments")
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="role_assignments")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["environment__name", "role__name"]
        constraints = [
            models.CheckConstraint(condition=Q(user__isnull=False, team__isnull=True)
                                   | Q(user__isnull=True, team__isnull=False),
                                   name="assignment_user_xor_team"),
            models.UniqueConstraint(fields=["role", "environment", "user"], condition=Q(user__isnull=False),
                                    name="uniq_user_assignment"),
            models.UniqueConstraint(fields=["role", "environment", "team"], condition=Q(team__isnull=False),
                                    name="uniq_team_assignment"),
        ]

    def __str__(self) -> str:
        return f"{self.holder} is {self.role} in {self.environment}"

    @property
    def holder(self):
        return self.user if self.user_id else self.team


class Ownership(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public: anyone with access to the environment"
        ADMINISTRATORS = "administrators", "Administrators only"
        RESTRICTED = "restricted", "Restricted to the owner and the named users and teams"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="ownerships")
    kind = models.CharField(max_length=20)  # "image", "container", "volume", "network"
    engine_id = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="owned_resources")
    owner_name = models.CharField(max_length=150, blank=True)  # kept if the user is deleted
    visibility = models.CharField(max_length=20, choices=Visibility.choices, default=Visibility.RESTRICTED)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_resources")
    teams = models.ManyToManyField("accounts.Team", blank=True, related_name="shared_resources")
    operation = models.ForeignKey("operations.Operation", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment", "kind", "engine_id"],
                                               name="uniq_ownership")]

    def __str__(self) -> str:
        return f"{self.kind} {self.engine_id[:19]} ({self.get_visibility_display()})"
