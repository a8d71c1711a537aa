"""Terminal sessions as asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/).

The terminal consumer makes a ``TerminalRecorder`` when a session opens, feeds it
what the container wrote (bytes, decoded incrementally so a UTF-8 character split
across reads stays whole) and resizes, then hands it to
``audit.record_terminal_session`` when the session closes.

The settings are read once, when the recorder is made (from the Settings page, else
the environment: ``console.sitesettings.catalog``), so a change applies to terminals
opened after it. Make it in synchronous code (the consumer uses ``database_sync_to_async``).

- Nothing is kept when ``audit_record_terminals`` (``BERTH_AUDIT_RECORD_TERMINALS``) is off.
- Input is not recorded unless ``audit_record_terminal_input``
  (``BERTH_AUDIT_RECORD_TERMINAL_INPUT``) is on: people type passwords into terminals, and
  what they type is echoed in the output anyway.
- A recording stops growing at ``audit_recording_max_bytes``
  (``BERTH_AUDIT_RECORDING_MAX_BYTES``); it says so.
"""

from __future__ import annotations

import codecs
import json
import time

from console.sitesettings import catalog


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
        chosen = catalog.get_many("audit_record_terminals", "audit_record_terminal_input",
                                  "audit_recording_max_bytes")
        self.keep = bool(chosen["audit_record_terminals"])  # False: nothing is recorded nor kept
        self.keep_input = bool(chosen["audit_record_terminal_input"])
        self.max_bytes = int(chosen["audit_recording_max_bytes"])
        self._decoders = {"o": codecs.getincrementaldecoder("utf-8")("replace"),
                          "i": codecs.getincrementaldecoder("utf-8")("replace")}

    def _add(self, kind: str, data: str, at: float | None = None) -> None:
        if self.truncated or not data or not self.keep:
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
