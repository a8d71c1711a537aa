"""Beat's periodic reaper of operations whose worker died (see console.operations.reaper)."""

from celery import shared_task

from console.core.models import Environment
from console.operations import reaper


@shared_task(name="console.operations.reap")
def reap_operations() -> dict:
    reaped = reaper.reap()
    freed = reaper.clean_leftovers(Environment.objects.all())
    return {"reaped": [str(op.pk) for op in reaped], "freed": freed}
