"""Registries the console knows (Docker Hub, Alibaba Cloud ACR, any v2 registry),
with credentials encrypted at rest, and the repositories browsed from them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from console.access.querysets import RestrictedQuerySet
from console.core import crypto


class RegistryQuerySet(RestrictedQuerySet):
    def restrict(self, user, permission: str, environment):
        """Registries have their own rules (public, their creator's, their teams'): registries.access."""
        from console.registries.access import restrict

        return restrict(self, user, permission, environment)


class Registry(models.Model):
    objects = RegistryQuerySet.as_manager()

    class Kind(models.TextChoices):
        DOCKER_HUB = "dockerhub", "Docker Hub"
        ACR = "acr", "Alibaba Cloud ACR"
        V2 = "v2", "Registry (v2 API)"

    class Use(models.TextChoices):
        """Who may use its stored credentials (and see it) with an owned-scope role; see ``access``."""
        OWNER = "owner", "Its owner only (and administrators)"
        TEAMS = "teams", "Its owner and the teams chosen below"
        EVERYONE = "everyone", "Everyone who may use registries"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.V2)
    host = models.CharField(max_length=255, help_text="e.g. docker.io, registry.cn-hangzhou.aliyuncs.com, 127.0.0.1:5000")
    username = models.CharField(max_length=255, blank=True)
    secret_encrypted = models.TextField(blank=True)  # password or token; never shown back
    insecure = models.BooleanField(default=False, help_text="plain HTTP (loopback registries always are)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    use = models.CharField(max_length=10, choices=Use.choices, default=Use.OWNER,
                           help_text="Who may use its credentials (test, browse, pull, push)")
    teams = models.ManyToManyField("accounts.Team", blank=True, related_name="registries")
    # The outcome of the last "test the credentials" (None: never tested since the last change).
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "registries"

    def __str__(self) -> str:
        return self.name

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)

    def set_secret(self, plaintext: str) -> None:
        self.secret_encrypted = crypto.encrypt(plaintext)

    @property
    def engine_insecure(self) -> bool | None:
        """What the engine's ``insecure`` argument wants: True when the box is ticked, else None
        (the engine decides: loopback hosts speak plain HTTP). False would force https on loopback."""
        return True if self.insecure else None

    @property
    def has_catalog(self) -> bool:
        """Docker Hub does not serve ``/v2/_catalog``; the others may."""
        return self.kind != self.Kind.DOCKER_HUB

    def credentials(self):
        """Engine credentials for this registry, or None for anonymous access."""
        from engine.distribution.credentials import Credentials

        if not self.username:
            return None
        return Credentials(username=self.username, password=crypto.decrypt(self.secret_encrypted))


class Repository(models.Model):
    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="repositories")
    name = models.CharField(max_length=255)
    tags = models.JSONField(default=list, blank=True)
    browsed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["registry", "name"], name="uniq_repo_per_registry")]
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return f"{self.registry.host}/{self.name}"
