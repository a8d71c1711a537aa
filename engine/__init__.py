"""Berth's embedded container engine.

Plain Python, no Django: a library with a ``python -m engine`` command line.
It is the source of truth for images, containers, volumes and networks on its host.
"""

from engine.config import EngineConfig
from engine.errors import EngineError

__all__ = ["EngineConfig", "EngineError"]
