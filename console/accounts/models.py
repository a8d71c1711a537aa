"""Teams, and what protects signing in.

Users are Django's own (``is_superuser`` is the global administrator flag,
``is_active`` false means disabled). Roles and assignments live in
``console.access``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user in a team; a leader manages the team's membership (not its roles)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    is_leader = models.BooleanField(default=False)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}{' (leader)' if self.is_leader else ''}"


class SignInThrottle(models.Model):
    """Failed sign-ins for one key ("pair:<address>|<name>", "ip:<address>" or "user:<name>"),
    and the lockout they earned (see ``console.accounts.signin``).

    Keyed by the name as typed, so a name that does not exist is throttled exactly
    like one that does: the lockout says nothing about who has an account.
    """

    key = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    # A name's row: when administrators were told it is under attack (signin.under_attack).
    alerted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.failures} failures"


class TwoFactor(models.Model):
    """A user's TOTP secret (encrypted at rest); on once ``confirmed_at`` is set."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="two_factor")
    secret_encrypted = models.TextField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_step = models.BigIntegerField(default=0)  # a code works once

    def __str__(self) -> str:
        return f"two-factor for {self.user}"

    @property
    def enabled(self) -> bool:
        return self.confirmed_at is not None
