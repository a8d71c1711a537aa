"""Operations whose worker died: found by their stale heartbeat, marked failed, and what
they left behind given back.

A running operation's task stamps ``heartbeat_at`` every BERTH_OPERATION_HEARTBEAT_SECONDS
(see runner.Heartbeat). One not stamped for BERTH_OPERATION_STALE_SECONDS has no live
worker. At a worker's start, the operations recorded as run by that same worker name are
dead as soon as they missed a few beats (that worker just started, so its previous life is
over; a fresh beat means another live process uses the same name, and it is left alone).
The reaper runs at every worker's start (console.celery) and on beat's schedule
(console.operations.tasks).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from console.operations.models import Operation

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the worker stopped"


def _stale_before() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=float(settings.BERTH_OPERATION_STALE_SECONDS))


def _stale_q() -> Q:
    before = _stale_before()
    return Q(heartbeat_at__lt=before) | Q(heartbeat_at__isnull=True, started_at__lt=before)


def is_stale(operation: Operation) -> bool:
    beat = operation.heartbeat_at or operation.started_at
    return beat is not None and beat < _stale_before()


def reap(*, worker: str = "") -> list[Operation]:
    """Mark failed the running operations nobody runs any more; returns them. ``worker``: the
    name of a worker that is starting (what it ran before is dead whatever its heartbeat)."""
    dead = _stale_q()
    if worker:
        missed = timezone.now() - dt.timedelta(seconds=3 * float(settings.BERTH_OPERATION_HEARTBEAT_SECONDS))
        dead |= Q(worker=worker, heartbeat_at__lt=missed)
    reaped = []
    for operation in Operation.objects.filter(dead, state=Operation.State.RUNNING):
        # Again in the update: a heartbeat that came in meanwhile keeps it alive.
        marked = Operation.objects.filter(dead, pk=operation.pk, state=Operation.State.RUNNING).update(
            state=Operation.State.FAILED, error=INTERRUPTED, finished_at=timezone.now())
        if marked:
            operation.refresh_from_db()
            reaped.append(operation)
            log.warning("operation %s (%s) was interrupted: its worker %s stopped", operation.pk,
                        operation.action, operation.worker or "?")
    if reaped:
        from console.operations.runner import publish

        for operation in reaped:
            publish(operation, {"kind": "state"})
    return reaped


def clean_leftovers(environments) -> dict:
    """What interrupted operations left (partial downloads in the engine's ingest): each
    engine is asked through its driver, which hands it to the engine's garbage collector."""
    from console.drivers import driver_for
    from console.drivers.base import EngineUnreachable

    freed = {}
    for environment in environments:
        try:
            freed[environment.name] = driver_for(environment).clean_leftovers(
                float(settings.BERTH_INGEST_GRACE_SECONDS))
        except EngineUnreachable as exc:
            log.warning("clean-up of %s skipped: %s", environment, exc)
        except Exception:
            log.exception("clean-up of %s failed", environment)
    return freed
