"""Reading container logs written by the monitor (JSON lines, see engine.logs.writer).

A log is ``json.log`` plus older rotated files ``json.log.1``, ``json.log.2``... Records
are ``{"time": RFC 3339 with 9 fraction digits, UTC, "stream", "log", ["partial"]}`` in
time order (after output lost to a full disk, one stderr record with ``"dropped": {"lines",
"bytes"}`` says how much), so times compare as strings and ``since`` is found by bisecting the file.
``tail`` reads blocks backwards from the end. Nothing loads a whole file.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from engine.base.clock import fraction_nanoseconds, now_rfc3339, unix_nanoseconds
from engine.errors import InvalidArgument

BLOCK = 64 * 1024
POLL_SECONDS = 0.1
TIME_PREFIX = b'{"time": "'


def parse_when(value, now: float | None = None) -> str | None:
    """``since``/``until`` as Docker takes them: Unix seconds, RFC 3339, or a duration
    ago (``10m``, ``1h30m``, ``45s``). Returned as a comparable RFC 3339 string."""
    try:
        return _parse_when(value, now)
    except (OverflowError, OSError, ValueError):  # a time no clock can say
        raise InvalidArgument(f"invalid time {value!r}: out of range") from None


def _parse_when(value, now: float | None) -> str | None:
    if value is None or value == "":
        return None
    now = time.time() if now is None else now
    if isinstance(value, (int, float)):
        return now_rfc3339(int(value * 1e9))
    if hasattr(value, "timestamp"):
        return now_rfc3339(int(value.timestamp() * 1e9))
    text = str(value).strip()
    exact = unix_nanoseconds(text)
    if exact is not None:
        return now_rfc3339(exact)
    duration = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", text)
    if duration and any(duration.groups()):
        h, m, s = duration.groups()
        seconds = int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)
        return now_rfc3339(int((now - seconds) * 1e9))
    # RFC 3339 to the nanosecond: the fraction is kept apart (a float of seconds since 1970
    # is only good to a few hundred nanoseconds, and log lines can be closer than that).
    stamp = re.fullmatch(r"([^.]+?)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", text)
    try:
        parsed = datetime.fromisoformat(stamp.group(1) + (stamp.group(3) or "").replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise InvalidArgument(f"invalid time {value!r}: use Unix seconds, RFC 3339 or a duration like 10m") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return now_rfc3339(int(parsed.timestamp()) * 1_000_000_000 + fraction_nanoseconds(stamp.group(2) or ""))


# A follower's position when there was no log file yet (the container had not written).
NO_CURRENT_FILE = (-1, 0)


def log_files(log_path: Path) -> list[Path]:
    """Oldest first."""
    rotated = sorted(log_path.parent.glob(log_path.name + ".*"),
                     key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0, reverse=True)
    rotated = [p for p in rotated if p.suffix[1:].isdigit()]
    return rotated + ([log_path] if log_path.exists() else [])


def _time_of(line: bytes) -> str:
    if line.startswith(TIME_PREFIX):
        return line[len(TIME_PREFIX):len(TIME_PREFIX) + 30].decode("ascii", "replace")
    try:
        return json.loads(line).get("time", "")
    except ValueError:
        return ""


def reverse_lines(path: Path, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(start offset, line with its newline), last first, from byte ``end`` (a line boundary;
    default the end of the file) back to the start, reading a block at a time."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        position = size if end is None else min(end, size)
        rest = b""
        while position > 0:
            block = min(BLOCK, position)
            position -= block
            f.seek(position)
            parts = (f.read(block) + rest).split(b"\n")
            rest = parts.pop(0)
            offset = position + len(rest) + 1
            starts = []
            for part in parts:
                starts.append(offset)
                offset += len(part) + 1
            for start, part in zip(reversed(starts), reversed(parts), strict=True):
                if part:
                    yield start, part + b"\n"
        if rest:
            yield 0, rest + b"\n"


def _seek_since(f, since: str) -> None:
    """Position ``f`` at the first line whose time is >= since (bisecting byte offsets)."""
    f.seek(0, os.SEEK_END)
    low, high = 0, f.tell()
    while high - low > BLOCK:
        mid = (low + high) // 2
        f.seek(mid)
        f.readline()  # skip to the next line start
        line = f.readline()
        if not line or _time_of(line) >= since:
            high = mid
        else:
            low = mid
    f.seek(low)
    if low:
        f.readline()
    while True:
        position = f.tell()
        line = f.readline()
        if not line or _time_of(line) >= since:
            f.seek(position)
            return


def _wanted(record: dict, streams: set[str]) -> bool:
    return record.get("stream") in streams


def read(log_path: Path, *, tail: int | None = None, since=None, until=None,
         stdout: bool = True, stderr: bool = True, stop_at: tuple[int, int] | None = None) -> Iterator[dict]:
    """Records of a container's log, oldest first. ``stop_at`` (inode, offset): read that file
    only up to there (a follower continues from that point)."""
    since_s, until_s = parse_when(since), parse_when(until)
    streams = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
    files = log_files(Path(log_path))
    if stop_at == NO_CURRENT_FILE:  # a follower reads the current file from its start
        files = [path for path in files if path != Path(log_path)]
    if tail is not None and tail >= 0:
        picked: list[dict] = []
        for path in reversed(files):
            for _start, line in reverse_lines(path, _end(path, stop_at)):
                if len(picked) >= tail:
                    break
                stamp = _time_of(line)
                if since_s and stamp < since_s:
                    break
                if until_s and stamp > until_s:
                    continue
                record = _decode(line)
                if record is not None and _wanted(record, streams):
                    picked.append(record)
            if len(picked) >= tail:
                break
        yield from reversed(picked)
        return
    for path in files:
        end = _end(path, stop_at)
        with open(path, "rb") as f:
            if since_s:
                _seek_since(f, since_s)
            for line in f:
                if end is not None and f.tell() > end:
                    return
                if until_s and _time_of(line) > until_s:
                    return
                record = _decode(line)
                if record is not None and _wanted(record, streams):
                    yield record


def _end(path: Path, stop_at: tuple[int, int] | None) -> int | None:
    if stop_at is None:
        return None
    try:
        return stop_at[1] if os.stat(path).st_ino == stop_at[0] else None
    except FileNotFoundError:
        return None


def _decode(line: bytes) -> dict | None:
    try:
        return json.loads(line)
    except ValueError:
        return None  # a torn last line (the writer crashed mid-write)


class Follower:
    """New records appended to a log since the last poll, across rotations."""

    def __init__(self, log_path: Path, streams: set[str]):
        self.path = Path(log_path)
        self.streams = streams
        self.file = None
        self.partial = b""
        self._open(at_end=True)

    def _open(self, at_end: bool) -> None:
        try:
            self.file = open(self.path, "rb")
        except FileNotFoundError:
            self.file = None
            return
        if at_end:
            self.file.seek(0, os.SEEK_END)

    def position(self) -> tuple[int, int]:
        """(inode, offset) where following starts: the backlog is read up to here. With no
        log file yet, ``NO_CURRENT_FILE``: the file that appears is all the follower's."""
        if self.file is None:
            return NO_CURRENT_FILE
        return os.fstat(self.file.fileno()).st_ino, self.file.tell()

    def poll(self) -> list[dict]:
        if self.file is None:
            self._open(at_end=False)
            if self.file is None:
                return []
        out = self._drain()
        try:
            rotated = os.stat(self.path).st_ino != os.fstat(self.file.fileno()).st_ino
        except FileNotFoundError:
            rotated = False
        if rotated:  # the old file is complete: finish it, then read the new one from its start
            out += self._drain()
            self.file.close()
            self.partial = b""
            self._open(at_end=False)
            out += self._drain()
        return out

    def _drain(self) -> list[dict]:
        end = os.fstat(self.file.fileno()).st_size
        if end < self.file.tell():  # the writer took back a record the disk cut short
            self.file.seek(end)
            self.partial = b""
        data = self.partial + self.file.read()
        lines = data.split(b"\n")
        self.partial = lines.pop()
        records = [_decode(line) for line in lines if line]
        return [r for r in records if r is not None and _wanted(r, self.streams)]

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def follow(log_path: Path, is_running: Callable[[], bool], *, tail: int | None = None, since=None,
           stdout: bool = True, stderr: bool = True) -> Iterator[dict]:
    """The existing records (with tail/since), then new ones until the container stops."""
    streams = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
    follower = Follower(Path(log_path), streams)  # opened first: nothing falls in between
    try:
        yield from read(log_path, tail=tail, since=since, stdout=stdout, stderr=stderr,
                        stop_at=follower.position())
        while True:
            running = is_running()
            yield from follower.poll()
            if not running:
                return
            time.sleep(POLL_SECONDS)
    finally:
        follower.close()


async def follow_async(log_path: Path, is_running: Callable[[], bool], *, tail: int | None = None,
                       since=None, stdout: bool = True, stderr: bool = True) -> AsyncIterator[dict]:
    """As ``follow``, for asyncio (a Channels consumer): file reads are small, polls sleep."""
    import asyncio  # here: the CLI never pays for it

    streams = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
    follower = Follower(Path(log_path), streams)
    try:
        backlog = await asyncio.to_thread(
            lambda: list(read(log_path, tail=tail, since=since, stdout=stdout, stderr=stderr,
                              stop_at=follower.position())))
        for record in backlog:
            yield record
        while True:
            running = await asyncio.to_thread(is_running)
            for record in follower.poll():
                yield record
            if not running:
                return
            await asyncio.sleep(POLL_SECONDS)
    finally:
        follower.close()


def format_record(record: dict, timestamps: bool = False) -> bytes:
    text = record.get("log", "")
    if timestamps:
        text = f"{record.get('time', '')} {text}"
    return text.encode()
