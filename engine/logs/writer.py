"""Writing a container's log, in the container's monitor: JSON lines
``{"time", "stream", "log"}``, long lines split and marked ``partial``, rotated by size.
``engine.logs.reader`` reads them back.

Standard library only and light at import: the monitor loads it while runc starts.
"""

from __future__ import annotations

import os

from engine.base.clock import now_rfc3339
from engine.base.space import RESERVE_SIZE, free_bytes

MAX_LINE = 16 * 1024  # longer lines are split into partial records, as Docker does


class LogWriter:
    """JSON-lines log, one record per line of output, rotated by size.

    It never fails: output that cannot be written (a full disk) is dropped and counted, and
    once there is room again one record says how much was lost before logging goes on. A
    write cut short is taken back, so the file only ever holds whole records."""

    def __init__(self, path: str, max_size: int, max_files: int):
        import json  # not at import: the monitor makes its writer once the container runs

        self._dumps = json.dumps
        self.path, self.max_size, self.max_files = path, max_size, max(1, max_files)
        self.file, self.size = None, 0
        try:
            self._open()
        except OSError:
            pass  # a full disk may refuse to create it: the first write that can will
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        self.dropped_lines = self.dropped_bytes = 0
        self.drop_reason = ""

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream] + data
        out = []
        while True:
            nl = buf.find(b"\n")
            if nl == -1 or nl >= MAX_LINE:
                if len(buf) >= MAX_LINE:
                    out.append((buf[:MAX_LINE], True))
                    buf = buf[MAX_LINE:]
                    continue
                break
            out.append((buf[:nl + 1], False))
            buf = buf[nl + 1:]
        self.pending[stream] = buf
        self._write(stream, out)

    def flush(self) -> None:
        for stream, buf in self.pending.items():
            if buf:
                self._write(stream, [(buf, True)])
                self.pending[stream] = b""

    def _record(self, stream: str, text: str, partial: bool = False, **extra) -> str:
        record = {"time": now_rfc3339(), "stream": stream, "log": text}  # "time" first: the reader seeks on it
        if partial:
            record["partial"] = True
        record.update(extra)
        return self._dumps(record, ensure_ascii=False)

    def _write(self, stream: str, chunks) -> None:
        if not chunks and not self.dropped_lines:
            return
        lines = [self._record(stream, chunk.decode("utf-8", errors="replace"), partial)
                 for chunk, partial in chunks]
        if self.dropped_lines:
            # Not before there is room to spare: space just freed for a state write (the
            # engine's reserve) is not the log's to take.
            if free_bytes(os.path.dirname(self.path)) < 2 * RESERVE_SIZE:
                self._drop(chunks, self.drop_reason)
                return
            lines.insert(0, self._record(
                "stderr", f"berth: {self.dropped_lines} lines ({self.dropped_bytes} bytes) of output "
                f"dropped: {self.drop_reason}\n", dropped={"lines": self.dropped_lines,
                                                         "bytes": self.dropped_bytes}))
        data = ("\n".join(lines) + "\n").encode()
        try:
            if self.file is None or self.file.closed:  # first write, or a rotation stopped half-way
                self._open()
            if self.size + len(data) > self.max_size and self.size > 0:
                self._rotate()
            self._append(data)
        except OSError as exc:
            self._drop(chunks, exc.strerror or str(exc))
            return
        self.dropped_lines = self.dropped_bytes = 0

    def retry(self) -> None:
        """Write the record of what was dropped, if there is room now (no new output needed)."""
        if self.dropped_lines:
            self._write("stderr", [])

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[self.file.write(view):]
        except OSError:
            self.file.truncate(self.size)  # no half record: a reader would stop at it
            raise
        self.size += len(data)

    def _drop(self, chunks, reason: str) -> None:
        self.dropped_lines += len(chunks)
        self.dropped_bytes += sum(len(chunk) for chunk, _ in chunks)
        self.drop_reason = reason.lower()

    def _rotate(self) -> None:
        self.file.close()
        for i in range(self.max_files - 1, 0, -1):
            src = self.path if i == 1 else f"{self.path}.{i - 1}"
            if os.path.exists(src):
                os.replace(src, f"{self.path}.{i}")
        if self.max_files == 1:
            os.truncate(self.path, 0)
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # the output may hold secrets; also a log made before
        self.file = open(fd, "ab", buffering=0)
        self.size = self.file.tell()
