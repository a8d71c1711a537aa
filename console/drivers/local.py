"""The embedded engine on this host, called in-process by the Celery worker."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from console.drivers.base import EngineDriver
from engine import host
from engine.config import EngineConfig


class LocalEngineDriver(EngineDriver):
    @property
    def config(self) -> EngineConfig:
        return EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT))

    def facts(self) -> dict:
        return host.facts(self.config)
