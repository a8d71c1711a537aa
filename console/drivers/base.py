"""The interface every engine driver implements."""

from __future__ import annotations

import abc


class EngineDriver(abc.ABC):
    def __init__(self, environment):
        self.environment = environment

    @abc.abstractmethod
    def facts(self) -> dict:
        """What the engine reports about its host: runtime, storage, kernel, cgroups."""
