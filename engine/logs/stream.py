"""Container logs as raw JSON lines with positions, for streaming to a browser.

``engine.logs.reader`` gives decoded records; a websocket wants whole lines, untouched, in big
batches, and a position per batch so a client that reconnects resumes exactly where it
stopped. A position (a *cursor*) is ``(inode, offset)``: the log file by its inode (which
survives rotation, ``json.log`` becoming ``json.log.1``) and the byte offset just past a
line. A cursor whose file was rotated away is reported as a gap, never silently skipped.

Nothing here loads a whole file: reads are bounded (``CHUNK``), backwards reads go by
blocks, and a full scan (search) streams line by line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.logs.reader import BLOCK, _seek_since, log_files, parse_when, reverse_lines

CHUNK = 256 * 1024  # a follow read, and so the largest batch of new lines
STDERR_MARK = b'"stream": "stderr"'
STDOUT_MARK = b'"stream": "stdout"'


@dataclass
class Batch:
    """Whole lines ``data`` (each ending in ``\\n``) of the file ``inode``, from byte ``start`` to ``end``."""

    inode: int
    start: int
    end: int
    data: bytes
    count: int

    @property
    def cursor(self) -> tuple[int, int]:
        return self.inode, self.end


def stream_filter(stdout: bool, stderr: bool) -> Callable[[bytes], bool] | None:
    """A line test for the wanted streams (None: every line is wanted)."""
    if stdout and stderr:
        return None
    mark = STDOUT_MARK if stdout else STDERR_MARK
    if not stdout and not stderr:
        return lambda line: False
    return lambda line: mark in line[:64]


def _keep(lines: list[bytes], wanted) -> list[bytes]:
    return lines if wanted is None else [line for line in lines if wanted(line)]


def _files(log_path: Path) -> list[tuple[Path, int]]:
    """(path, inode) oldest first."""
    out = []
    for path in log_files(log_path):
        try:
            out.append((path, os.stat(path).st_ino))
        except FileNotFoundError:
            continue
    return out


def _whole_end(path: Path) -> int:
    """The offset after the last complete line (a torn line being written is left out)."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        position = size
        while position > 0:
            step = min(BLOCK, position)
            f.seek(position - step)
            chunk = f.read(step)
            nl = chunk.rfind(b"\n")
            if nl != -1:
                return position - step + nl + 1
            position -= step
        return 0


class LogStream:
    """One container's log files."""

    def __init__(self, log_path: Path | str):
        self.path = Path(log_path)

    # ------------------------------------------------------------ backlog
    def tail(self, count: int | None, *, since=None, stdout: bool = True, stderr: bool = True,
             before: tuple[int, int] | None = None, max_bytes: int = 64 * 1024 * 1024) -> tuple[list[Batch], bool]:
        """The last ``count`` wanted lines (all of them with None), oldest first, as batches (one
        per file), ending at the current end of the log or just before the cursor ``before``.
        Also whether older lines remain."""
        since_s = parse_when(since)
        wanted = stream_filter(stdout, stderr)
        files = _files(self.path)
        if before is not None:
            index = next((i for i, (_, ino) in enumerate(files) if ino == before[0]), None)
            if index is None:
                return [], False
            files = files[:index + 1]
        batches: list[Batch] = []
        taken = size = 0
        more = False
        for i in range(len(files) - 1, -1, -1):
            path, inode = files[i]
            try:
                end = before[1] if (before is not None and i == len(files) - 1) else _whole_end(path)
            except FileNotFoundError:
                continue
            picked: list[bytes] = []
            first = end
            stop = False
            for start, line in reverse_lines(path, end):
                if since_s and line[10:40].decode("ascii", "replace") < since_s:
                    stop = True
                    break
                if wanted is not None and not wanted(line):
                    first = start
                    continue
                if (count is not None and taken >= count) or size >= max_bytes:
                    more = True
                    stop = True
                    break
                picked.append(line)
                first = start
                taken += 1
                size += len(line)
            if picked:
                picked.reverse()
                batches.append(Batch(inode, first, end, b"".join(picked), len(picked)))
            if stop:
                break
        batches.reverse()
        return batches, more

    def around(self, cursor: tuple[int, int], before: int = 100, after: int = 100) -> tuple[Batch | None, int]:
        """Lines around the one ending at ``cursor`` in its own file; and the index of that line."""
        path = self._path_of(cursor[0])
        if path is None:
            return None, -1
        older = []
        for _start, line in reverse_lines(path, cursor[1]):
            older.append(line)
            if len(older) > before:
                break
        older.reverse()
        focus = len(older) - 1
        start = cursor[1] - sum(len(line) for line in older)
        newer = []
        with open(path, "rb") as f:
            f.seek(cursor[1])
            for line in f:
                if not line.endswith(b"\n") or len(newer) >= after:
                    break
                newer.append(line)
        lines = older + newer
        data = b"".join(lines)
        return Batch(cursor[0], start, start + len(data), data, len(lines)), focus

    # ------------------------------------------------------------ search
    def search(self, pattern: re.Pattern, *, limit: int = 10_000, stdout: bool = True, stderr: bool = True,
               deadline: Callable[[], bool] | None = None) -> tuple[int, list[tuple[int, int]], list[bytes], bool]:
        """Every line whose text matches, over all files: (count, the cursors of the last ``limit``
        matches, their lines, whether the scan stopped early at ``deadline``)."""
        wanted = stream_filter(stdout, stderr)
        count = 0
        cursors: list[tuple[int, int]] = []
        lines: list[bytes] = []
        for path, inode in _files(self.path):
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                continue
            with f:
                offset = 0
                for n, line in enumerate(f):
                    offset += len(line)
                    if not line.endswith(b"\n"):
                        break
                    if wanted is not None and not wanted(line):
                        continue
                    try:
                        text = json.loads(line).get("log", "")
                    except ValueError:
                        continue
                    if pattern.search(text):
                        count += 1
                        cursors.append((inode, offset))
                        lines.append(line)
                        if len(cursors) > limit:
                            del cursors[0], lines[0]
                    if deadline is not None and n % 1024 == 0 and deadline():
                        return count, cursors, lines, True
        return count, cursors, lines, False

    def start_cursor(self, since=None) -> tuple[int, int] | None:
        """Where reading everything (from ``since`` when given) starts."""
        since_s = parse_when(since)
        for path, inode in _files(self.path):
            if not since_s:
                return inode, 0
            with open(path, "rb") as f:
                _seek_since(f, since_s)
                position = f.tell()
                if f.readline():
                    return inode, position
        return self.end_cursor()

    def _path_of(self, inode: int) -> Path | None:
        return next((path for path, ino in _files(self.path) if ino == inode), None)

    def end_cursor(self) -> tuple[int, int] | None:
        files = _files(self.path)
        if not files:
            return None
        path, inode = files[-1]
        return inode, _whole_end(path)

    # ------------------------------------------------------------ following
    def follower(self, after: tuple[int, int] | None = None, *, stdout: bool = True,
                 stderr: bool = True) -> Follower:
        return Follower(self, after, stream_filter(stdout, stderr))


class Follower:
    """Reads what is appended after a cursor, across rotations and truncation.

    ``poll()`` returns at most ``CHUNK`` bytes of whole lines per call (call again while it
    returns something). ``gap`` becomes True when the cursor's file was rotated away or
    truncated before it was read to the end: lines were lost to rotation, and following
    goes on with the oldest file that remains.
    """

    def __init__(self, stream: LogStream, after: tuple[int, int] | None, wanted):
        self.stream = stream
        self.wanted = wanted
        self.gap = False
        self.file = None
        self.inode = 0
        self.offset = 0
        if after is None:
            files = _files(stream.path)
            if files:
                path, inode = files[-1]
                self._open(path, inode, _whole_end(path))
        else:
            files = _files(stream.path)
            match = next(((p, i) for p, i in files if i == after[0]), None)
            if match is not None:
                self._open(match[0], match[1], after[1])
            elif files:
                self.gap = True
                self._open(files[0][0], files[0][1], 0)

    def _open(self, path: Path, inode: int, offset: int) -> None:
        try:
            self.file = open(path, "rb")
        except FileNotFoundError:
            self.file = None
            return
        if os.fstat(self.file.fileno()).st_ino != inode:  # rotated between stat and open
            self.file.close()
            self.file = None
            return
        self.inode, self.offset = inode, offset

    @property
    def cursor(self) -> tuple[int, int] | None:
        return (self.inode, self.offset) if self.file is not None else None

    def poll(self) -> Batch | None:
        if self.file is None:
            files = _files(self.stream.path)
            if not files:
                return None
            self._open(files[0][0], files[0][1], 0)
            if self.file is None:
                return None
        size = os.fstat(self.file.fileno()).st_size
        if size < self.offset:  # truncated in place (a single log file rotated)
            self.gap = True
            self.offset = 0
        if size > self.offset:
            self.file.seek(self.offset)
            data = self.file.read(min(CHUNK, size - self.offset))
            nl = data.rfind(b"\n")
            if nl != -1:
                data = data[:nl + 1]
                start = self.offset
                self.offset += len(data)
                lines = data.split(b"\n")[:-1]
                if self.wanted is not None:
                    kept = [line for line in lines if self.wanted(line)]
                    if not kept:
                        return self.poll() if size > self.offset else None
                    return Batch(self.inode, start, self.offset, b"\n".join(kept) + b"\n", len(kept))
                return Batch(self.inode, start, self.offset, data, len(lines))
            if len(data) == CHUNK:  # a line longer than a chunk: cannot happen (16 KiB lines)
                self.offset += len(data)
            return None
        # At the end of this file: move on if it has been rotated (the path is another file now).
        files = _files(self.stream.path)
        inodes = [ino for _, ino in files]
        if self.inode in inodes:
            index = inodes.index(self.inode)
            if index + 1 < len(files) and size == os.fstat(self.file.fileno()).st_size:
                self.file.close()
                self._open(files[index + 1][0], files[index + 1][1], 0)
                return self.poll() if self.file is not None else None
            return None
        if files:  # our file was rotated away twice: what came in between may be lost
            self.file.close()
            self.gap = True
            self._open(files[0][0], files[0][1], 0)
            return self.poll() if self.file is not None else None
        return None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def compile_search(text: str, *, regex: bool = False, case: bool = False) -> re.Pattern:
    """A search pattern from the user's text; ValueError when it is empty, too long or not a valid regex."""
    if not text:
        raise ValueError("empty search")
    if len(text) > 1000:
        raise ValueError("the search is too long")
    flags = 0 if case else re.IGNORECASE
    try:
        return re.compile(text if regex else re.escape(text), flags)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


def record_time(line: bytes) -> str:
    return line[10:40].decode("ascii", "replace")


__all__ = ["Batch", "LogStream", "Follower", "compile_search", "parse_when", "_seek_since"]
