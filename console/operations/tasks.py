"""Beat's periodic work for operations: the reaper of those whose worker died, and the
engine clean-up that gives back what interrupted work left (see console.operations.reaper)."""

from celery import shared_task

from console.core.models import Environment
from console.operations import reaper


@shared_task(name="console.operations.reap")
def reap_operations() -> dict:
    reaped = reaper.reap()
    freed = reaper.clean_leftovers({op.environment for op in reaped}) if reaped else {}
    return {"reaped": [str(op.pk) for op in reaped], "freed": freed}


@shared_task(name="console.operations.clean_leftovers")
def clean_leftovers() -> dict:
    """Partial downloads older than the grace period (those of operations reaped before it
    passed, and of any killed writer), through each engine's garbage collector."""
    return reaper.clean_leftovers(Environment.objects.all())


@shared_task(name="console.operations.clean_environment")
def clean_environment(environment_id: int) -> dict:
    return reaper.clean_leftovers(Environment.objects.filter(pk=environment_id))


def request_cleanup(environment) -> None:
    """Have a worker (which reaches the engine) give back what a dead operation left there."""
    clean_environment.delay(environment.pk)
