"""The engine's timestamps: RFC 3339 in UTC, as Docker writes them."""

from __future__ import annotations

import time


def now_rfc3339(ns: int | None = None) -> str:
    """With nanoseconds (logs, container states): ``2026-01-02T03:04:05.123456789Z``."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def now_rfc3339_seconds() -> str:
    """To the second (images, volumes, networks): ``2026-01-02T03:04:05Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
