"""The audit hook every service calls. The audit issue turns it into stored,
tamper-evident AuditEvents; today it writes a structured log line.

``details`` must already be free of secrets; ``redact`` helps.
"""

from __future__ import annotations

import logging

log = logging.getLogger("berth.audit")

SECRET_KEYS = ("password", "secret", "token", "credential", "auth")


def redact(details: dict) -> dict:
    """A copy of ``details`` with the values of secret-looking keys replaced."""
    clean = {}
    for key, value in details.items():
        if any(word in key.lower() for word in SECRET_KEYS):
            clean[key] = "[redacted]"
        elif isinstance(value, dict):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


def record(*, user, action: str, environment=None, target_type: str = "", target_id: str = "",
           target_name: str = "", outcome: str = "succeeded", error: str = "", details=None,
           operation=None) -> None:
    log.info(
        "%s %s by %s on %s/%s %s%s",
        action, outcome, getattr(user, "username", "-") or "-", target_type, target_name or target_id,
        f"env={environment.name} " if environment is not None else "",
        f"op={operation.pk}" if operation is not None else "",
        extra={"audit": {"details": redact(details or {}), "error": error}},
    )
