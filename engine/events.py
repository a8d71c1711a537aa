"""The engine's event stream: an append-only JSON-lines file under ``root/events``.

Every record is Docker-shaped: ``{"Type", "Action", "Actor": {"ID", "Attributes"},
"time", "timeNano"}``. Writers append one line with a single ``O_APPEND`` write, so
concurrent writers (the CLI, workers, monitors) never interleave. Readers follow the
file by polling its size, which needs no daemon.

Types and actions used: container create/start/die (exitCode)/oom/kill (signal)/stop/
restart/pause/unpause/rename/destroy/exec_create/exec_start/exec_die; image
pull/push/tag/untag/delete (emitted by the image modules).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from engine.config import EngineConfig
from engine.monitor import emit_event

POLL_SECONDS = 0.1


def log_path(config: EngineConfig) -> Path:
    return config.subdir("events") / "events.jsonl"


def emit(config: EngineConfig, type_: str, action: str, actor_id: str,
         attributes: dict | None = None) -> None:
    attrs = {k: str(v) for k, v in (attributes or {}).items()}
    emit_event(str(log_path(config)), type_, action, actor_id, attrs)


def _since_ns(since) -> int:
    """``since`` as a Unix time (seconds, float), a datetime, or None."""
    if since is None:
        return 0
    if hasattr(since, "timestamp"):
        return int(since.timestamp() * 1e9)
    return int(float(since) * 1e9)


class _Reader:
    """Reads whole lines appended to the events file since the last call."""

    def __init__(self, path: Path, since_ns: int, until_ns: int | None, filters: dict | None):
        self.path, self.since_ns, self.until_ns = path, since_ns, until_ns
        self.filters = filters or {}
        self.offset = 0
        self.partial = b""

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("timeNano", 0) < self.since_ns:
                continue
            if self.until_ns is not None and record.get("timeNano", 0) > self.until_ns:
                continue
            if self._wanted(record):
                out.append(record)
        return out

    def _wanted(self, record: dict) -> bool:
        for key, values in self.filters.items():
            if not values:
                continue
            if key == "type" and record.get("Type") not in values:
                return False
            if key in ("event", "action") and record.get("Action") not in values:
                return False
            if key in ("container", "id") and not any(
                    record["Actor"]["ID"].startswith(v) or
                    record["Actor"]["Attributes"].get("name") == v for v in values):
                return False
        return True


def read(config: EngineConfig, since=None, until=None, filters: dict | None = None) -> list[dict]:
    """Every recorded event in [since, until]."""
    reader = _Reader(log_path(config), _since_ns(since), None if until is None else _since_ns(until),
                     filters)
    return reader.poll()


def follow(config: EngineConfig, since=None, filters: dict | None = None,
           stop=None) -> Iterator[dict]:
    """Past events from ``since`` (none if None) and then new ones as they come.
    ``stop``: an optional callable; the iteration ends when it returns True."""
    path = log_path(config)
    reader = _Reader(path, _since_ns(since), None, filters)
    if since is None:
        reader.offset = path.stat().st_size if path.exists() else 0
    while True:
        yield from reader.poll()
        if stop is not None and stop():
            return
        time.sleep(POLL_SECONDS)


async def follow_async(config: EngineConfig, since=None, filters: dict | None = None) -> AsyncIterator[dict]:
    import asyncio  # here: the CLI and the monitor's starters never pay for it

    path = log_path(config)
    reader = _Reader(path, _since_ns(since), None, filters)
    if since is None:
        reader.offset = path.stat().st_size if path.exists() else 0
    while True:
        for record in reader.poll():
            yield record
        await asyncio.sleep(POLL_SECONDS)


def prune(config: EngineConfig, keep_bytes: int = 64 * 1024 * 1024) -> None:
    """Keep the file bounded: drop the oldest half when it grows past ``keep_bytes``."""
    path = log_path(config)
    if not path.exists() or path.stat().st_size <= keep_bytes:
        return
    with open(path, "rb") as f:
        f.seek(-keep_bytes // 2, os.SEEK_END)
        f.readline()
        rest = f.read()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(rest)
    os.replace(tmp, path)
