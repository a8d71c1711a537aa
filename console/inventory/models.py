"""The mirror of engine state: fast lists, search and history for the pages.

The engine is the truth; ``console.inventory.reconcile`` makes these rows match
it. Rows are keyed by (environment, engine id).
"""

from __future__ import annotations

from django.db import models

from console.access.querysets import RestrictedQuerySet
from console.core.models import Environment


class Image(models.Model):
    objects = RestrictedQuerySet.as_manager()

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="images")
    image_id = models.CharField(max_length=80)  # "sha256:<config digest>"
    repo_tags = models.JSONField(default=list)
    repo_digests = models.JSONField(default=list)
    name = models.CharField(max_length=300, db_index=True)  # first tag, or "" when dangling
    search_text = models.TextField(blank=True)  # tags and id, lower-cased, for search
    size = models.BigIntegerField(default=0)
    created = models.DateTimeField(null=True, blank=True)
    platform = models.CharField(max_length=60, blank=True)
    layer_count = models.PositiveIntegerField(default=0)
    labels = models.JSONField(default=dict, blank=True)
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "image_id"]
        constraints = [models.UniqueConstraint(fields=["environment", "image_id"], name="uniq_image_per_env")]

    def __str__(self) -> str:
        return self.name or self.short_id

    @property
    def short_id(self) -> str:
        return self.image_id.removeprefix("sha256:")[:12]

    @property
    def dangling(self) -> bool:
        return not self.repo_tags


class Container(models.Model):
    objects = RestrictedQuerySet.as_manager()

    class State(models.TextChoices):
        CREATED = "created"
        RUNNING = "running"
        PAUSED = "paused"
        RESTARTING = "restarting"
        EXITED = "exited"
        DEAD = "dead"
        REMOVING = "removing"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="containers")
    container_id = models.CharField(max_length=80)
    name = models.CharField(max_length=200, db_index=True)
    image = models.CharField(max_length=300, blank=True)  # as the user named it
    image_id = models.CharField(max_length=80, blank=True)
    command = models.TextField(blank=True)
    state = models.CharField(max_length=12, choices=State.choices, db_index=True)
    status = models.CharField(max_length=200, blank=True)  # "Up 3 minutes", "Exited (0) 2 hours ago"
    exit_code = models.IntegerField(null=True, blank=True)
    created = models.DateTimeField(null=True, blank=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ports = models.JSONField(default=list, blank=True)  # [{"host_ip", "host_port", "container_port", "protocol"}]
    labels = models.JSONField(default=dict, blank=True)
    search_text = models.TextField(blank=True)
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["environment", "container_id"],
                                               name="uniq_container_per_env")]
        indexes = [models.Index(fields=["environment", "state", "name"]),
                   models.Index(fields=["environment", "created"])]

    def __str__(self) -> str:
        return self.name

    @property
    def short_id(self) -> str:
        return self.container_id[:12]


class Volume(models.Model):
    objects = RestrictedQuerySet.as_manager()

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="volumes")
    name = models.CharField(max_length=255)
    driver = models.CharField(max_length=30, default="local")
    mountpoint = models.CharField(max_length=500, blank=True)
    anonymous = models.BooleanField(default=False)
    labels = models.JSONField(default=dict, blank=True)
    containers = models.JSONField(default=list, blank=True)  # [{"Id", "Name"}] using it
    created = models.DateTimeField(null=True, blank=True)
    # Disk used, measured by the periodic reconcile only (walking a volume costs time).
    size = models.BigIntegerField(null=True, blank=True)
    search_text = models.TextField(blank=True)
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="uniq_volume_per_env")]

    def __str__(self) -> str:
        return self.name

    @property
    def in_use(self) -> bool:
        return bool(self.containers)


class Network(models.Model):
    objects = RestrictedQuerySet.as_manager()

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="networks")
    network_id = models.CharField(max_length=80)
    name = models.CharField(max_length=200, db_index=True)
    driver = models.CharField(max_length=30)
    subnet = models.CharField(max_length=50, blank=True)
    gateway = models.CharField(max_length=50, blank=True)
    internal = models.BooleanField(default=False)
    builtin = models.BooleanField(default=False)  # none, host, the default bridge: cannot be removed
    labels = models.JSONField(default=dict, blank=True)
    containers = models.JSONField(default=dict, blank=True)  # container id -> {"Name", "IPv4Address"...}
    created = models.DateTimeField(null=True, blank=True)
    search_text = models.TextField(blank=True)
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["environment", "network_id"], name="uniq_network_per_env")]

    def __str__(self) -> str:
        return self.name
