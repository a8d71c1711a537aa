"""Secrets in an operation's parameters: shown redacted, kept encrypted for the task.

``operations.start`` stores ``seal(parameters)``: the redacted copy the pages and the
audit log show (``audit.redact``), plus, when redaction hid something, the real
parameters encrypted at rest (``console.core.crypto``, as registry passwords are) under
``KEY``. The task reads ``unseal(stored)``, so a container gets ``DB_PASSWORD`` as the
user typed it, never ``[redacted]``; once the operation has finished, the runner drops
them (``forget``).
"""

from __future__ import annotations

import json

from console import audit
from console.core import crypto

KEY = "_sealed"


def seal(parameters: dict, shown: dict | None = None) -> dict:
    """``shown`` (default: ``audit.redact(parameters)``), with the real ones encrypted if they differ."""
    shown = audit.redact(parameters) if shown is None else shown
    if shown == parameters:
        return dict(shown)
    return {**shown, KEY: crypto.encrypt(json.dumps(parameters))}


def unseal(stored: dict) -> dict:
    """The parameters as given to ``start``."""
    token = (stored or {}).get(KEY)
    if not token:
        return stored
    return json.loads(crypto.decrypt(token))


def forget(stored: dict) -> dict:
    """The shown parameters alone (the operation finished: nothing will read its secrets again)."""
    return {key: value for key, value in (stored or {}).items() if key != KEY}
