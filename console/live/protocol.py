"""The live sockets' protocol: close codes, limits, and message parsing.

Logs, stats and events sockets speak JSON text frames ``{"t": <type>, ...}``; the terminal
speaks binary frames whose first byte is an ASCII opcode. Anything else closes the socket
with ``CLOSE_BAD_MESSAGE``. See docs/websockets.md.
"""

from __future__ import annotations

import json

__all__ = ["CLOSE_BAD_MESSAGE", "CLOSE_FORBIDDEN", "CLOSE_NOT_FOUND", "CLOSE_UNAUTHENTICATED",
           "CLOSE_CONFLICT", "CLOSE_UNAVAILABLE", "CLOSE_IDLE", "BadMessage", "parse_json", "cursor_of"]

CLOSE_BAD_MESSAGE = 4400  # a message not in the protocol
CLOSE_UNAUTHENTICATED = 4401  # not signed in
CLOSE_FORBIDDEN = 4403  # signed in, the object is visible, the permission is missing
CLOSE_NOT_FOUND = 4404  # no such object, or not visible to this user (the same answer)
CLOSE_CONFLICT = 4409  # the container is not running (a terminal needs it running)
CLOSE_UNAVAILABLE = 4503  # the engine refused or failed (its words were sent before closing)
CLOSE_IDLE = 4408  # no message (not even a pong) for HEARTBEAT_TIMEOUT seconds

HEARTBEAT_SECONDS = 20.0
HEARTBEAT_TIMEOUT = 65.0
MAX_TEXT = 64 * 1024  # a client message is small; anything bigger is not in the protocol
MAX_DEPTH = 4  # {"t": "more", "before": [inode, offset]} is 2 deep

# logs
DEFAULT_TAIL = 500
MAX_TAIL = 100_000
MAX_MORE = 10_000
MAX_AROUND = 1_000
FILTER_LINES = 5_000
SEARCH_LIMIT = 10_000
SEARCH_SECONDS = 10.0
INFLIGHT_HIGH = 4 * 1024 * 1024  # bytes sent and not yet acknowledged: stop reading above
# terminal (opcodes are ASCII digits, as ttyd)
T_INPUT, T_RESIZE, T_ACK = b"0", b"1", b"2"  # client -> server
T_OUTPUT, T_INFO = b"0", b"1"  # server -> client
TERMINAL_HIGH = 512 * 1024  # unacknowledged output above which the pty is not read
TERMINAL_LOW = 128 * 1024
MAX_PENDING_INPUT = 1024 * 1024


class BadMessage(Exception):
    pass


def decode(text: str | bytes) -> dict:
    """A JSON object of at most MAX_TEXT characters, nested at most MAX_DEPTH deep. Deeper
    is not in the protocol; far deeper makes the parser give up (RecursionError), which is
    the client's error too, not the server's."""
    if len(text) > MAX_TEXT:
        raise BadMessage("message too long")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise BadMessage("not JSON") from None
    if not isinstance(message, dict):
        raise BadMessage("not a protocol message")
    level, depth = [message], 1
    while level:
        if depth > MAX_DEPTH:
            raise BadMessage("message nested too deep")
        level = [child for value in level for child in (value.values() if isinstance(value, dict) else value)
                 if isinstance(child, (dict, list))]
        depth += 1
    return message


def parse_json(text: str | None, bytes_data: bytes | None) -> dict:
    if text is None or bytes_data is not None:
        raise BadMessage("binary frame on a text socket")
    message = decode(text)
    if not isinstance(message.get("t"), str):
        raise BadMessage("not a protocol message")
    return message


def integer(message: dict, key: str, low: int, high: int, default=None, allow_none: bool = False):
    value = message.get(key, default)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise BadMessage(f"{key} must be a whole number from {low} to {high}")
    return value


def flag(message: dict, key: str, default: bool) -> bool:
    value = message.get(key, default)
    if not isinstance(value, bool):
        raise BadMessage(f"{key} must be true or false")
    return value


def text(message: dict, key: str, default: str = "", limit: int = 1000) -> str:
    value = message.get(key, default)
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit:
        raise BadMessage(f"{key} must be a string")
    return value


def cursor_of(message: dict, key: str, required: bool = True) -> tuple[int, int] | None:
    value = message.get(key)
    if value is None and not required:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 63 for v in value)):
        raise BadMessage(f"{key} must be a cursor [inode, offset]")
    return value[0], value[1]
