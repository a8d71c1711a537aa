"""A container's ``state.json``: read-modify-written under the container's lock, by the
engine and by the container's monitor alike (standard library only: the monitor loads it)."""

from __future__ import annotations

import os

from engine.base.files import lock, write_json_atomic

ZERO_TIME = "0001-01-01T00:00:00Z"  # Docker's "never" (StartedAt, FinishedAt)
UNSUPERVISED_ERROR = "monitor died: the container runs unsupervised (no logs, no exit code)"


def root_of(container_dir: str) -> str:
    """The engine root of ``root/containers/<id>``."""
    return os.path.dirname(os.path.dirname(os.path.abspath(container_dir)))


def update_state(directory: str, **fields) -> dict:
    import json  # not at import: the monitor loads json only once its container runs

    path = os.path.join(directory, "state.json")
    with lock(os.path.join(directory, "lock")):  # every read-modify-write of the state holds it
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = {}
        state.update(fields)
        write_json_atomic(path, state, fsync=False, mode=0o600)  # 0600: it may name secrets
    return state


def read_records(containers_dir) -> dict[str, tuple[dict, dict]]:
    """Every container's (config, state) under ``root/containers``, read only, for the
    system's passes over all of them (gc, system df, system check); one whose records cannot
    be read is left out."""
    import json
    from pathlib import Path

    out = {}
    root = Path(containers_dir)
    for cdir in root.iterdir() if root.is_dir() else []:
        if cdir.name == "names" or not cdir.is_dir():
            continue
        try:
            out[cdir.name] = (json.loads((cdir / "config.json").read_text()),
                              json.loads((cdir / "state.json").read_text()))
        except (OSError, ValueError):
            continue
    return out
