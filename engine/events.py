"""The engine's event stream: a bounded JSON-lines log under ``root/events``.

Every record is Docker-shaped: ``{"Type", "Action", "Actor": {"ID", "Attributes"},
"time", "timeNano"}``. Writers append one line with a single ``O_APPEND`` write, so
concurrent writers (the CLI, workers, monitors) never interleave. Readers follow the
file by polling its size, which needs no daemon.

Bounded: when ``events.jsonl`` grows past ``max_bytes()`` it is renamed to
``events.1.jsonl`` (one atomic rename, under ``rotate.lock``; the previous ``.1`` goes),
and writers, which open the file for each record, start a new one. So the log holds at
most about twice the bound, and the older half of it at worst is lost, never a record
in the middle. Rotated files older than ``MAX_AGE_SECONDS`` are dropped by ``gc``.

Reads go backwards from the end (``engine.logs.reader.reverse_lines``) and stop at ``since``:
the events page of the last hour reads the last hour, not the whole history.

Types and actions used: container create/start/die (exitCode)/oom/kill (signal)/stop/
restart/pause/unpause/rename/destroy/exec_create/exec_start/exec_die/unsupervised (its
monitor died, the container runs on); image pull/push/tag/untag/delete (emitted by the
image modules); network and volume create/destroy/connect/disconnect.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from engine.base.clock import unix_nanoseconds
from engine.base.eventlog import emit_event
from engine.config import EngineConfig

POLL_SECONDS = 0.1
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
MAX_AGE_SECONDS = 30 * 86400
# Writers stamp a record before appending it: in the file, records of different processes
# may be out of order by this much, so backward reads look that far past ``since``.
SKEW_NS = 2_000_000_000


def max_bytes() -> int:
    """The size past which the log is rotated (``BERTH_ENGINE_EVENTS_MAX_BYTES``)."""
    try:
        return max(4096, int(os.environ.get("BERTH_ENGINE_EVENTS_MAX_BYTES", DEFAULT_MAX_BYTES)))
    except ValueError:
        return DEFAULT_MAX_BYTES


def log_path(config: EngineConfig) -> Path:
    return config.subdir("events") / "events.jsonl"


def rotated_path(config: EngineConfig) -> Path:
    return log_path(config).with_name("events.1.jsonl")


def emit(config: EngineConfig, type_: str, action: str, actor_id: str,
         attributes: dict | None = None) -> None:
    attrs = {k: str(v) for k, v in (attributes or {}).items()}
    path = log_path(config)
    emit_event(str(path), type_, action, actor_id, attrs)
    with contextlib.suppress(OSError):
        if path.stat().st_size > max_bytes():
            rotate(config)


def rotate(config: EngineConfig, limit: int | None = None) -> bool:
    """Start a new log if the current one is past ``limit`` bytes; True if it did."""
    limit = max_bytes() if limit is None else limit
    path = log_path(config)
    fd = os.open(path.with_name("rotate.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # again under the lock: another process may have rotated meanwhile
            if path.stat().st_size <= limit:
                return False
        except FileNotFoundError:
            return False
        os.replace(path, rotated_path(config))
        return True
    finally:
        os.close(fd)


def drop_old(config: EngineConfig, max_age: float = MAX_AGE_SECONDS) -> int:
    """Delete the rotated file once everything in it is older than ``max_age``; bytes freed."""
    old = rotated_path(config)
    try:
        st = old.stat()
    except FileNotFoundError:
        return 0
    if time.time() - st.st_mtime < max_age:
        return 0
    old.unlink(missing_ok=True)
    return st.st_size


def _since_ns(since) -> int:
    """``since`` as a Unix time (seconds: a number, or Docker's exact ``SECONDS.NANOS`` text,
    which a float cannot hold to the nanosecond), a datetime, or None."""
    if isinstance(since, str) and (exact := unix_nanoseconds(since)) is not None:
        return exact
    if since is None:
        return 0
    if hasattr(since, "timestamp"):
        return int(since.timestamp() * 1e9)
    return int(float(since) * 1e9)


def _wanted(record: dict, filters: dict) -> bool:
    for key, values in filters.items():
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


def _parse(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _start_offset(path: Path, since_ns: int) -> int:
    """The offset in ``path`` from which every record at or after ``since_ns`` lies,
    found by reading backwards (a little past it: writers' clocks race)."""
    from engine.logs.reader import reverse_lines

    offset = None
    try:
        for start, line in reverse_lines(path):
            record = _parse(line)
            if record is not None and record.get("timeNano", 0) < since_ns - SKEW_NS:
                return offset if offset is not None else start + len(line)
            offset = start
    except FileNotFoundError:
        return 0
    return 0


class _Reader:
    """Reads whole lines appended to the events file since the last call, and follows it
    across a rotation (the rest of the renamed file first, then the new one)."""

    def __init__(self, config: EngineConfig, since_ns: int, until_ns: int | None, filters: dict | None):
        self.config = config
        self.path = log_path(config)
        self.since_ns, self.until_ns = since_ns, until_ns
        self.filters = filters or {}
        self.partial = b""
        self.inode: int | None = None
        self.offset = 0

    def seek_since(self) -> None:
        """Start at ``since``: in the rotated file if it reaches that far back."""
        old = rotated_path(self.config)
        current = _inode(self.path)
        if self.since_ns and current is not None:
            offset = _start_offset(self.path, self.since_ns)
            if offset > 0 or not old.exists():
                self.inode, self.offset = current, offset
                return
        if old.exists():
            self.inode, self.offset = _inode(old), _start_offset(old, self.since_ns) if self.since_ns else 0
        else:
            self.inode, self.offset = current, 0

    def seek_end(self) -> None:
        self.inode = _inode(self.path)
        try:
            self.offset = self.path.stat().st_size
        except FileNotFoundError:
            self.offset = 0

    def poll(self) -> list[dict]:
        out: list[dict] = []
        current = _inode(self.path)
        if self.inode is not None and current != self.inode:
            # Rotated (or first read of the old file): finish the file we were in, if found.
            old = rotated_path(self.config)
            if _inode(old) == self.inode:
                out += self._read(old)
            self.inode, self.offset, self.partial = current, 0, b""
        elif self.inode is None:
            self.inode = current
        if current is not None:
            out += self._read(self.path)
        return out

    def _read(self, path: Path) -> list[dict]:
        try:
            with open(path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            record = _parse(line)
            if record is None:
                continue
            stamp = record.get("timeNano", 0)
            if stamp < self.since_ns or (self.until_ns is not None and stamp > self.until_ns):
                continue
            if _wanted(record, self.filters):
                out.append(record)
        return out


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def read(config: EngineConfig, since=None, until=None, filters: dict | None = None) -> list[dict]:
    """Every recorded event in [since, until], oldest first (read from ``since`` on only)."""
    reader = _Reader(config, _since_ns(since), None if until is None else _since_ns(until), filters)
    reader.seek_since()
    return reader.poll()


def last(config: EngineConfig, count: int, filters: dict | None = None) -> list[dict]:
    """The last ``count`` events that pass ``filters``, oldest first, read backwards."""
    from engine.logs.reader import reverse_lines

    out: list[dict] = []
    for path in (log_path(config), rotated_path(config)):
        try:
            for _, line in reverse_lines(path):
                record = _parse(line)
                if record is not None and _wanted(record, filters or {}):
                    out.append(record)
                    if len(out) >= count:
                        return out[::-1]
        except FileNotFoundError:
            continue
    return out[::-1]


def follow(config: EngineConfig, since=None, filters: dict | None = None,
           stop=None) -> Iterator[dict]:
    """Past events from ``since`` (none if None) and then new ones as they come.
    ``stop``: an optional callable; the iteration ends when it returns True."""
    reader = _Reader(config, _since_ns(since), None, filters)
    reader.seek_end() if since is None else reader.seek_since()
    while True:
        yield from reader.poll()
        if stop is not None and stop():
            return
        time.sleep(POLL_SECONDS)


async def follow_async(config: EngineConfig, since=None, filters: dict | None = None) -> AsyncIterator[dict]:
    import asyncio  # here: the CLI and the monitor's starters never pay for it

    reader = _Reader(config, _since_ns(since), None, filters)
    reader.seek_end() if since is None else reader.seek_since()
    while True:
        for record in reader.poll():
            yield record
        await asyncio.sleep(POLL_SECONDS)


def size(config: EngineConfig) -> int:
    """Bytes the events log holds on disk."""
    total = 0
    for path in (log_path(config), rotated_path(config)):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total
