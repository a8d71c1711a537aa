"""Berth's embedded container engine.

Plain Python, no Django: a library with a ``python -m engine`` command line.
It is the source of truth for images, containers, volumes and networks on its host.
"""

__all__ = ["EngineConfig", "EngineError"]


def __getattr__(name: str):
    # Loaded on first use: ``python -m engine`` imports this package before handing the
    # command to a server that has everything loaded already (engine/supervisor/cliclient.py).
    if name == "EngineConfig":
        from engine.config import EngineConfig

        return EngineConfig
    if name == "EngineError":
        from engine.errors import EngineError

        return EngineError
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
