"""Periodic reconcile of every environment's mirror."""

import logging

from celery import shared_task

from console.core.models import Environment
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
            except Exception:  # one broken environment must not stop the others
                log.exception("reconcile of %s in %s failed", kind, environment)
    return summary
