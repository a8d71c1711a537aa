"""The audit log: append-only, hash-chained events.

``AuditEvent`` rows are written only by ``console.audit.chain.append`` (through
``record(...)``), which holds the chain head's lock while it numbers and hashes
the row. Database triggers (migration 0002) refuse UPDATE and DELETE on the
table; the only exceptions are Django's SET_NULL when a user or an environment
is deleted (the names at the time are kept, and hashed), and the retention path,
which raises the one-row ``RetentionFlag`` inside its own transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from console.core.models import Environment

GENESIS = "0" * 64  # the "previous hash" of the first record ever written


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        DENIED = "denied"
        FAILED = "failed"
        # An operation accepted and handed to a worker: its result is on the Operation.
        QUEUED = "queued"

    # Numbered by the chain (head.last_id + 1), never by the database.
    id = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", db_index=False)
    actor_name = models.CharField(max_length=150, blank=True)  # the username at the time
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    environment = models.ForeignKey(Environment, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", db_index=False)
    environment_name = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=80)  # dotted: "image.pull", "auth.sign_in"
    target_type = models.CharField(max_length=30, blank=True)
    target_id = models.CharField(max_length=200, blank=True)
    target_name = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    error = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    operation_id = models.UUIDField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    search_text = models.TextField(blank=True)  # lower-cased, for the free-text filter
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [
            models.Index(fields=["time", "id"], name="audit_time_id"),
            models.Index(fields=["actor_name", "time", "id"], name="audit_actor_time"),
            models.Index(fields=["environment", "time", "id"], name="audit_env_time"),
            models.Index(fields=["action", "time", "id"], name="audit_action_time"),
            models.Index(fields=["outcome", "time", "id"], name="audit_outcome_time"),
            models.Index(fields=["target_name", "time", "id"], name="audit_target_time"),
            models.Index(fields=["target_id"], name="audit_target_id"),
            models.Index(fields=["request_id"], name="audit_request"),
            models.Index(fields=["operation_id"], name="audit_operation"),
            models.Index(fields=["actor"], name="audit_actor_fk"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.outcome}"

    @property
    def target_label(self) -> str:
        return self.target_name or self.target_id


class TerminalRecording(models.Model):
    """A terminal session in asciicast v2, gzip-compressed. The event's details carry
    its SHA-256 (of the uncompressed text), so verify sees a changed recording."""

    event = models.OneToOneField(AuditEvent, primary_key=True, on_delete=models.DO_NOTHING,
                                 related_name="recording", db_constraint=False)
    data = models.BinaryField()
    size = models.BigIntegerField()  # uncompressed bytes


class ChainHead(models.Model):
    """One row: the last record's number and hash (locked by every writer), and the
    anchor the oldest remaining record starts from (GENESIS until retention runs)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS)
    anchor_id = models.BigIntegerField(default=0)  # the last archived record's number
    anchor_hash = models.CharField(max_length=64, default=GENESIS)


class RetentionFlag(models.Model):
    """One row; ``active`` is true only inside the retention transaction, and only
    then do the triggers let DELETE through."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    active = models.BooleanField(default=False)


class ChainCheck(models.Model):
    """The result of a verify run (scheduled or by hand); the page shows the latest."""

    checked_at = models.DateTimeField()
    ok = models.BooleanField()
    records = models.BigIntegerField(default=0)
    broken_id = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    head_id = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True)
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-checked_at"]
