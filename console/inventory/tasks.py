"""Reconciles run in the worker, where the engine is reached: periodically for every
environment, and on request (``request_reconcile``) from processes that cannot see the
engine themselves, such as the web server. So do the engine facts the dashboard shows."""

import logging
import socket

from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.utils import timezone

from console.core.models import Environment
from console.drivers import driver_for
from console.drivers.base import EngineUnreachable
from console.inventory.reconcile import RECONCILERS, reconcile

log = logging.getLogger(__name__)


@shared_task(name="console.inventory.reconcile_all")
def reconcile_all() -> dict:
    summary = {}
    for environment in Environment.objects.all():
        for kind in list(RECONCILERS):
            try:
                options = {"sizes": True} if kind == "volumes" else {}
                summary[f"{environment.name}.{kind}"] = reconcile(environment, kind, **options)
            except EngineUnreachable as exc:  # the rows stay as they were
                log.warning("reconcile of %s in %s skipped: %s", kind, environment, exc)
            except Exception:  # one broken environment must not stop the others
                log.exception("reconcile of %s in %s failed", kind, environment)
    return summary


@shared_task(name="console.inventory.reconcile")
def reconcile_one(environment_id: int, kind: str) -> dict | None:
    environment = Environment.objects.filter(pk=environment_id).first()
    if environment is None or kind not in RECONCILERS:
        return None
    try:
        return reconcile(environment, kind)
    except EngineUnreachable as exc:
        log.warning("reconcile of %s in %s skipped: %s", kind, environment, exc)
        return None


def request_reconcile(environment, kind: str) -> None:
    """Have a worker reconcile ``kind`` of ``environment`` (a page found the mirror stale)."""
    if kind not in RECONCILERS:
        raise ValueError(f"unknown inventory kind {kind!r}")
    reconcile_one.delay(environment.pk, kind)


@shared_task(name="console.inventory.refresh_engine_facts")
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
