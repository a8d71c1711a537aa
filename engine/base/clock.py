"""The engine's timestamps: RFC 3339 in UTC, as Docker writes them."""

from __future__ import annotations

import re
import time


def now_rfc3339(ns: int | None = None) -> str:
    """With nanoseconds (logs, container states): ``2026-01-02T03:04:05.123456789Z``."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def now_rfc3339_seconds() -> str:
    """To the second (images, volumes, networks): ``2026-01-02T03:04:05Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def unix_nanoseconds(text: str) -> int | None:
    """Docker's exact Unix time text, ``SECONDS[.FRACTION]``, in nanoseconds (a float of
    seconds is good only to a few hundred); None when ``text`` is not of that form."""
    text = text.strip()
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        return None
    whole, _, fraction = text.partition(".")
    return int(whole) * 1_000_000_000 + fraction_nanoseconds(fraction)


def fraction_nanoseconds(fraction: str) -> int:
    """The digits after a decimal point, as nanoseconds."""
    return int((fraction + "000000000")[:9])
