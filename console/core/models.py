"""Core models: the environments the console manages."""

from __future__ import annotations

from django.db import models


class Environment(models.Model):
    """A host the console manages. The local embedded engine exists from the first start."""

    class Kind(models.TextChoices):
        LOCAL = "local", "Local embedded engine"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.LOCAL)
    created_at = models.DateTimeField(auto_now_add=True)
    # The last facts a worker reported (see tasks.refresh_engine_facts), shown at once on the dashboard.
    facts = models.JSONField(default=dict, blank=True)
    facts_reported_at = models.DateTimeField(null=True, blank=True)
    facts_reported_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def local(cls) -> Environment:
        """The embedded engine on this host: it always exists (made again if it went missing)."""
        environment, _ = cls.objects.get_or_create(name="local", defaults={"kind": cls.Kind.LOCAL})
        return environment

    @property
    def facts_group(self) -> str:
        """The channel-layer group that hears about this environment's facts."""
        return f"engine-facts.{self.pk}"
