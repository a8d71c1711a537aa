"""Periodic clean-up of image archives: exports not downloaded in a day, abandoned uploads."""

from __future__ import annotations

import shutil
import time

from celery import shared_task

from console.images.services import transfers_dir

KEEP_SECONDS = 24 * 3600


@shared_task(name="console.images.clean_transfers")
def clean_transfers(keep_seconds: float = KEEP_SECONDS) -> list[str]:
    """Remove what ``transfers/`` holds that is older than ``keep_seconds``."""
    removed = []
    cutoff = time.time() - keep_seconds
    for path in transfers_dir().iterdir():
        if path.stat().st_mtime < cutoff:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
