"""What a user types for a container, checked and parsed before anything is touched: sizes,
CPUs, restart policies, signals, environment, names, volume specs and timestamps."""

from __future__ import annotations

import os
import re
import signal as signal_module
from datetime import UTC, datetime

from engine.errors import InvalidArgument

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # Docker's
NAME_MAX = 128


def parse_bytes(text: str | int | None) -> int:
    """Docker's memory sizes: 512m, 1g, 1.5GiB, 1048576 (bytes)."""
    if text in (None, "", 0):
        return 0
    if isinstance(text, int):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*", str(text), re.IGNORECASE)
        if not m:
            raise InvalidArgument(f"invalid size: {text!r} (use a number with an optional unit b, k, m, g)")
        unit = " kmgtp".index(m.group(2).lower() or " ")
        value = int(float(m.group(1)) * 1024 ** unit)
    if value < 6 * 1024 * 1024:
        raise InvalidArgument("minimum memory limit allowed is 6MB")
    return value


def parse_cpus(text: str | float | None) -> int:
    if text in (None, "", 0):
        return 0
    try:
        cpus = float(text)
    except ValueError:
        raise InvalidArgument(f"invalid --cpus value {text!r}: not a number") from None
    available = os.cpu_count() or 1
    if cpus <= 0 or cpus > available:
        raise InvalidArgument(f"range of CPUs is from 0.01 to {available}.00, as there are only "
                              f"{available} CPUs available")
    return int(cpus * 1e9)


def parse_restart(text: str | None) -> dict:
    text = (text or "no").strip()
    name, _, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy {text!r}: use no, always, unless-stopped "
                              "or on-failure[:max-retries]")
    if count and (name != "on-failure" or not count.isdigit()):
        raise InvalidArgument(f"invalid restart policy {text!r}: only on-failure takes a count")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def parse_signal(value: str | int | None, default: int = signal_module.SIGKILL) -> int:
    if value in (None, ""):
        return int(default)
    text = str(value).strip().upper()
    if text.isdigit():
        number = int(text)
        if number in {s.value for s in signal_module.Signals} or 34 <= number <= 64:
            return number
        raise InvalidArgument(f"invalid signal: {value}")
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal_module.Signals[text])
    except KeyError:
        raise InvalidArgument(f"invalid signal: {value}") from None


def parse_env(items) -> list[str]:
    env = []
    for item in items or []:
        if not item or item.startswith("="):
            raise InvalidArgument(f"invalid environment variable: {item!r}")
        if "=" not in item:  # -e NAME takes the value from our own environment, as Docker
            if item not in os.environ:
                continue
            item = f"{item}={os.environ[item]}"
        env.append(item)
    return env


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    merged: dict[str, str] = {}
    for item in list(base) + list(overrides):
        key, _, _ = item.partition("=")
        merged[key] = item
    return list(merged.values())


def check_name(name: str) -> str:
    """A container name as Docker takes it (a leading '/' is dropped), or InvalidArgument."""
    name = name.lstrip("/")
    shown = name if len(name) <= 40 else name[:40] + "..."
    if not NAME_RE.match(name):
        raise InvalidArgument(f'Invalid container name ("{shown}"), only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed')
    if len(name) > NAME_MAX:
        raise InvalidArgument(f'Invalid container name ("{shown}"): at most {NAME_MAX} characters are allowed')
    return name


def check_volume_specs(specs) -> None:
    """``-v`` specs with an empty part (``:/x``, ``/a::ro``) are refused, as Docker does."""
    for spec in specs or []:
        if not spec:
            raise InvalidArgument("invalid empty volume spec")
        if "" in spec.split(":"):
            raise InvalidArgument(f"invalid spec: {spec}: empty section between colons")


def parse_time(stamp: str) -> float:
    """RFC 3339 (with nanoseconds) to a Unix timestamp."""
    main, _, frac = stamp.rstrip("Z").partition(".")
    base = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)
