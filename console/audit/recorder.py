"""Terminal sessions as asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/).

The terminal consumer makes a ``TerminalRecorder`` when a session opens, feeds it
what the container wrote (bytes, decoded incrementally so a UTF-8 character split
across reads stays whole) and resizes, then hands it to
``audit.record_terminal_session`` when the session closes.

Input is not recorded unless ``BERTH_AUDIT_RECORD_TERMINAL_INPUT`` is on: people type
passwords into terminals, and what they type is echoed in the output anyway.
A recording stops growing at ``BERTH_AUDIT_RECORDING_MAX_BYTES`` (it says so).
"""

from __future__ import annotations

import codecs
import json
import time

from django.conf import settings


class TerminalRecorder:
    def __init__(self, width: int = 80, height: int = 24, *, command: str = "", title: str = "",
                 started: float | None = None, clock=time.monotonic):
        self.width, self.height = int(width), int(height)
        self.clock = clock
        self.began = clock()
        self.timestamp = int(started if started is not None else time.time())
        self.command, self.title = command, title
        self.events: list[str] = []
        self.size = 0
        self.truncated = False
        self.max_bytes = int(getattr(settings, "BERTH_AUDIT_RECORDING_MAX_BYTES", 16 * 1024 * 1024))
        self.keep_input = bool(getattr(settings, "BERTH_AUDIT_RECORD_TERMINAL_INPUT", False))
        self._decoders = {"o": codecs.getincrementaldecoder("utf-8")("replace"),
                          "i": codecs.getincrementaldecoder("utf-8")("replace")}

    def _add(self, kind: str, data: str, at: float | None = None) -> None:
        if self.truncated or not data:
            return
        elapsed = (self.clock() - self.began) if at is None else at
        line = json.dumps([round(elapsed, 6), kind, data], ensure_ascii=False)
        if self.size + len(line) + 1 > self.max_bytes:
            self.truncated = True
            self.events.append(json.dumps([round(elapsed, 6), "m", "recording truncated: size limit reached"]))
            return
        self.events.append(line)
        self.size += len(line) + 1

    def output(self, data: bytes | str, at: float | None = None) -> None:
        """What the container wrote (``at``: seconds since the start; default now)."""
        if isinstance(data, bytes):
            data = self._decoders["o"].decode(data)
        self._add("o", data, at)

    def input(self, data: bytes | str, at: float | None = None) -> None:
        if not self.keep_input:
            return
        if isinstance(data, bytes):
            data = self._decoders["i"].decode(data)
        self._add("i", data, at)

    def resize(self, width: int, height: int, at: float | None = None) -> None:
        self._add("r", f"{int(width)}x{int(height)}", at)

    def header(self) -> dict:
        header = {"version": 2, "width": self.width, "height": self.height, "timestamp": self.timestamp}
        if self.command:
            header["command"] = self.command
        if self.title:
            header["title"] = self.title
        return header

    def text(self) -> str:
        return "\n".join([json.dumps(self.header(), ensure_ascii=False), *self.events]) + "\n"
