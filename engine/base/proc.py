"""Telling a live process from a recycled pid."""

from __future__ import annotations


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (None for a process gone or a zombie): a pid with the
    start time recorded with it names one process, never a later one given the same pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2:].split()
    if fields[0] == "Z":  # a zombie is dead for our purposes
        return None
    return int(fields[19])
