"""Scheduled audit work (Celery beat): verify the chain, apply retention."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.utils import timezone

log = logging.getLogger("berth.audit")


def run_verify():
    """Verify the chain, store the result for the audit page, and log the head hash
    (the log is a copy of the head outside the database)."""
    from console.audit import chain
    from console.audit.models import ChainCheck

    began = time.monotonic()
    result = chain.verify()
    check = ChainCheck.objects.create(
        checked_at=timezone.now(), ok=result.ok, records=result.records, broken_id=result.broken_id,
        message=result.message, head_id=result.head_id, head_hash=result.head_hash,
        seconds=round(time.monotonic() - began, 3))
    stale = ChainCheck.objects.order_by("-checked_at").values_list("pk", flat=True)[200:]
    ChainCheck.objects.filter(pk__in=list(stale)).delete()
    (log.info if result.ok else log.error)("%s", result)
    return check


@shared_task(name="console.audit.verify")
def verify_chain() -> str:
    return str(run_verify().ok)


@shared_task(name="console.audit.retention")
def apply_retention() -> int:
    from console.audit.retention import purge_older_than

    return len(purge_older_than())
