"""The Celery app: workers invoke the engine, beat runs periodic work."""

import logging
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("berth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)


@worker_ready.connect
def at_worker_start(sender=None, **kwargs):
    """The worker owns the engine: create its state if this is a fresh host, then reap the
    operations that a previous life of this worker (or any dead one) left running."""
    from console.core.models import Environment
    from console.drivers import driver_for
    from console.operations import reaper

    environments = list(Environment.objects.all())
    for environment in environments:
        try:
            driver_for(environment).prepare()
        except Exception:
            log.exception("preparing the engine of %s failed", environment)
    name = getattr(sender, "hostname", "") or ""
    reaped = reaper.reap(worker=name)
    if reaped:
        reaper.clean_leftovers({op.environment for op in reaped})
