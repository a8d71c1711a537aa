"""Appending one record to the engine's events log: the one writer the engine
(``engine.events``), the monitor and the keeper share. Reading it is ``engine.events``."""

from __future__ import annotations

import os
import time

from engine.base.space import free_bytes, is_no_space


def emit_event(events_path: str, type_: str, action: str, actor_id: str, attributes: dict) -> None:
    import json  # not at import: the monitor loads json only once its container runs

    ns = time.time_ns()
    record = {"Type": type_, "Action": action,
              "Actor": {"ID": actor_id, "Attributes": attributes},
              "time": ns // 1_000_000_000, "timeNano": ns}
    line = (json.dumps(record) + "\n").encode()
    # A full disk loses the event rather than failing what happened (a stop, an rm that
    # frees space; the state files still say it), and never leaves half a line: an append
    # cannot be taken back, so it is not tried without room for it.
    if free_bytes(os.path.dirname(events_path)) < len(line) + 2 * 4096:
        return
    try:
        fd = os.open(events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line)  # one write with O_APPEND: lines never interleave
        finally:
            os.close(fd)
    except OSError as exc:
        if not is_no_space(exc):
            raise
