"""What several command modules parse and do alike: ``key=value`` options (labels and
filters) and a verb applied to several names, Docker's way. (A leading underscore: not a
command module.)"""

from __future__ import annotations

import os
import sys

from engine.errors import EngineError, InvalidArgument


def filters(items) -> dict[str, list[str]]:
    """``-f key=value`` options, several values to a key."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not key or not eq:
            raise InvalidArgument(f"bad filter {item!r}: use key=value")
        out.setdefault(key, []).append(value)
    return out


def pairs(items, *, what: str = "label", from_env: bool = False) -> dict[str, str]:
    """``KEY[=VALUE]`` options (``--label``, ``--build-arg``); the last value of a key wins.
    A bare ``KEY`` is an empty value, or with ``from_env`` the environment's (and nothing
    when it is unset), as ``docker build --build-arg KEY`` does."""
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"bad {what} {item!r}: use key=value")
        if not eq and from_env:
            if key not in os.environ:
                continue
            value = os.environ[key]
        out[key] = value
    return out


def each(refs, action) -> int:
    """``action(ref)`` for each name; what it returns is printed (nothing for None), an
    error is printed and the next name is done all the same; 1 when any failed."""
    code = 0
    for ref in refs:
        try:
            result = action(ref)
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            code = 1
            continue
        if result is not None:
            print(result)
    return code
