"""Operations: who asked for what, where, when, its progress and its outcome.

Every action that changes engine state or takes time is an Operation row plus a
Celery task (see ``console.operations.runner``).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from console.access.querysets import RestrictedQuerySet
from console.core.models import Environment


class Operation(models.Model):
    objects = RestrictedQuerySet.as_manager()

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="operations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                             related_name="operations")
    username = models.CharField(max_length=150, blank=True)  # kept if the user is deleted
    action = models.CharField(max_length=60)  # dotted: "image.pull", "container.start"
    target_type = models.CharField(max_length=30, blank=True)
    target_id = models.CharField(max_length=200, blank=True)
    target_name = models.CharField(max_length=300, blank=True)
    parameters = models.JSONField(default=dict, blank=True)  # secrets removed before saving
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    progress = models.JSONField(default=dict, blank=True)  # {"layers": {id: {...}}, "lines": [...]}
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # While running: the worker (Celery node name) and its last sign of life. A running
    # operation whose heartbeat is stale is reaped (console.operations.reaper).
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Asked to stop (the task sees it between chunks, lines and layers).
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["environment", "-created_at"]),
                   models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.action} {self.target_name}".strip()

    @property
    def finished(self) -> bool:
        return self.state in self.FINISHED

    @property
    def cancellable(self) -> bool:
        """Long transfers and builds can be cancelled while queued or running."""
        from console.operations.actions import ACTIONS

        action = ACTIONS.get(self.action)
        return action is not None and action.cancellable and not self.finished

    @property
    def group(self) -> str:
        """The channel-layer group that hears this operation's progress."""
        return f"operation.{self.pk}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def percent(self) -> int | None:
        """Overall byte progress over all layers, when known."""
        layers = self.progress.get("layers", {}).values()
        total = sum(layer.get("total") or 0 for layer in layers)
        if not total:
            return 100 if self.state == self.State.SUCCEEDED else None
        done = sum(min(layer.get("current") or 0, layer.get("total") or 0) for layer in layers)
        return int(100 * done / total)
