"""A setting an administrator set on the Settings page; without a row, the environment's
value (the Django setting) is in force. Change rows only through ``services``."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SiteSetting(models.Model):
    key = models.CharField(max_length=64, primary_key=True)  # a key of catalog.SETTINGS
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    def __str__(self):
        return f"{self.key}={self.value!r}"
