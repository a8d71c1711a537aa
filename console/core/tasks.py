"""Celery tasks of the core app."""

from __future__ import annotations

import logging
import socket

from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.utils import timezone

from console.core.models import Environment
from console.drivers import driver_for

log = logging.getLogger(__name__)


@shared_task(name="console.core.tasks.refresh_engine_facts")
def refresh_engine_facts(environment_id: int | None = None) -> None:
    """Ask each environment's engine for its facts, store them, and tell the dashboards."""
    environments = Environment.objects.all()
    if environment_id is not None:
        environments = environments.filter(pk=environment_id)
    worker = socket.gethostname()
    layer = get_channel_layer()
    for environment in environments:
        message = {"type": "engine.facts", "worker": worker}
        try:
            facts = driver_for(environment).facts()
        except Exception as exc:  # reported to the page; the worker keeps going
            log.exception("engine facts failed for %s", environment)
            message.update(state="error", error=str(exc))
        else:
            environment.facts = facts
            environment.facts_reported_at = timezone.now()
            environment.facts_reported_by = worker
            environment.save(update_fields=["facts", "facts_reported_at", "facts_reported_by"])
            message.update(state="fresh", facts=facts, reported_at=environment.facts_reported_at.isoformat())
        async_to_sync(layer.group_send)(environment.facts_group, message)
