"""The audit hook every service calls: ``record(...)``; and ``redact(...)`` for details.

Records are stored as ``AuditEvent`` rows in an append-only, hash-chained table
(see ``models``, ``chain``). Call ``record`` once per action, after the
permission check, for denials too (``outcome="denied"``). A record written inside
a transaction that is rolled back is rolled back with it: record denials outside
``atomic`` blocks that the denial unwinds.

Other entry points:

- ``record_sign_in_lockout(username=..., request=...)``: the sign-in protections call it
  when they lock an account or an address out.
- ``record_terminal_session(...)`` and ``TerminalRecorder``: the terminal keeps a
  session's output as asciicast v2 and records it when the session closes.
- ``info_from_scope(scope)``: a websocket consumer's source (IP through trusted proxies,
  user agent, a fresh id), to pass as ``request=`` since consumers have no Django request.
- Sign-in, sign-in failure and sign-out are recorded from Django's auth signals
  (``signals.py``); nobody needs to call anything for them.

Nothing here imports models at module level: services import this package early.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid

from console.audit.context import info_from_scope
from console.audit.recorder import TerminalRecorder
from console.sitesettings import catalog as sitesettings

log = logging.getLogger("berth.audit")

__all__ = ["record", "redact", "record_sign_in_lockout", "record_terminal_session", "TerminalRecorder",
           "info_from_scope"]

SECRET_KEYS = ("password", "passwd", "secret", "token", "credential", "auth", "private_key", "api_key",
               "apikey", "access_key", "cookie")
REDACTED = "[redacted]"
ENV_KEYS = ("env", "environment", "environment_variables", "build_args")
OUTCOMES = ("succeeded", "denied", "failed", "queued")


def _secret_key(key) -> bool:
    key = str(key).lower()
    return any(word in key for word in SECRET_KEYS)


def _redact_value(value, in_env: bool = False):
    if isinstance(value, dict):
        if value.get("secret") is True and "value" in value:
            # An env entry marked secret: {"name": "DB_URL", "value": "...", "secret": true}
            return {**_redact_dict(value), "value": REDACTED}
        return _redact_dict(value)
    if isinstance(value, (list, tuple)):
        return [_redact_value(item, in_env) for item in value]
    if in_env and isinstance(value, str) and "=" in value:
        name, _ = value.split("=", 1)
        if _secret_key(name):
            return f"{name}={REDACTED}"
    return value


def _redact_dict(details: dict) -> dict:
    clean = {}
    for key, value in details.items():
        if _secret_key(key) and not (value is None or value == "" or isinstance(value, bool)):
            clean[key] = REDACTED  # booleans ("secret_set": true) and empty values say nothing secret
        elif str(key).lower() in ENV_KEYS and isinstance(value, dict):
            # {"env": {"DB_PASSWORD": "x", "PORT": "80"}}: values of secret-looking names go
            clean[key] = {k: (REDACTED if _secret_key(k) else _redact_value(v)) for k, v in value.items()}
        else:
            clean[key] = _redact_value(value, in_env=str(key).lower() in ENV_KEYS)
    return clean


def redact(details: dict) -> dict:
    """A copy of ``details`` with secrets replaced by ``[redacted]``: values of secret-looking
    keys (password, token, secret, auth...), env entries marked ``"secret": true``, and
    ``NAME=value`` env strings whose NAME looks secret. Empty values and booleans stay (a
    record still shows that no password was given, or that one was set)."""
    return _redact_dict(details or {})


def _environment_fields(environment) -> dict:
    if environment is None:
        return {"environment": None, "environment_name": ""}
    return {"environment_id": environment.pk, "environment_name": environment.name}


def record(*, user, action: str, environment=None, target_type: str = "", target_id: str = "",
           target_name: str = "", outcome: str = "succeeded", error: str = "", details=None,
           operation=None, request=None, actor_name: str | None = None, _recording: bytes | None = None):
    """Store one audit event and return it.

    ``user`` may be None or anonymous (a failed sign-in: give ``actor_name``).
    ``outcome`` is succeeded, denied, failed (give ``error``) or queued (an accepted
    operation; its result is on the Operation, linked from the event).
    ``request`` is optional: by default the current request's id, source IP and user
    agent come from ``RequestContextMiddleware``; in a Celery task there are none.
    """
    from console.audit import chain
    from console.audit.context import info_for

    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    info = info_for(request)
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    if actor_name is None:
        actor_name = user.get_username() if authenticated else ""
    operation_id = getattr(operation, "pk", operation)
    # Values exactly as they will read back from the database (the hash covers them).
    fields = {
        "actor_id": user.pk if authenticated else None,
        "actor_name": actor_name[:150],
        "source_ip": _stored_ip(info.source_ip),
        "user_agent": info.user_agent[:300],
        **_environment_fields(environment),
        "action": action[:80],
        "target_type": (target_type or "")[:30],
        "target_id": str(target_id or "")[:200],
        "target_name": str(target_name or "")[:300],
        "outcome": outcome,
        "error": error or "",
        "request_id": info.request_id[:64],
        "operation_id": uuid.UUID(str(operation_id)) if operation_id else None,
        "details": redact(details or {}),
    }
    fields["search_text"] = _search_text(fields)
    event = chain.append(fields, recording=_recording)
    if outcome == "denied" and info.request_id:
        info.denied.append(event.pk)
    log.info("audit #%s %s %s by %s on %s/%s", event.pk, action, outcome, actor_name or "-",
             target_type, target_name or target_id)
    return event


def _stored_ip(address: str | None) -> str | None:
    """The address as GenericIPAddressField stores it (IPv4-mapped IPv6 as plain IPv4)."""
    if not address or ":" not in address:
        return address or None
    from django.utils.ipv6 import clean_ipv6_address

    return clean_ipv6_address(address, unpack_ipv4=True)


def _search_text(fields: dict) -> str:
    import json

    parts = [fields["actor_name"], fields["action"], fields["target_type"], fields["target_id"],
             fields["target_name"], fields["environment_name"], fields["error"], fields["source_ip"] or "",
             json.dumps(fields["details"], default=str, ensure_ascii=False) if fields["details"] else ""]
    return " ".join(part for part in parts if part).lower()[:4000]


def record_sign_in_lockout(*, username: str, request=None, user=None, reason: str = "",
                           until: dt.datetime | None = None, details: dict | None = None):
    """For the sign-in protections: an account or address was locked out. Recorded as
    ``auth.lockout`` with outcome ``denied``."""
    extra = dict(details or {})
    if reason:
        extra["reason"] = reason
    if until is not None:
        extra["until"] = until.isoformat()
    return record(user=user, actor_name=username, action="auth.lockout", target_type="user",
                  target_name=username, outcome="denied", details=extra, request=request)


def record_terminal_session(*, user, environment, container_id: str, container_name: str = "",
                            command: str | list = "", run_as: str = "", started_at: dt.datetime,
                            ended_at: dt.datetime, recording=None, outcome: str = "succeeded",
                            error: str = "", exit_code: int | None = None, request=None,
                            details: dict | None = None):
    """Record a closed terminal session (``container.terminal``): who, which container, the
    command and user it ran as, when it opened and closed, and its recording.

    ``recording`` is a ``TerminalRecorder`` or asciicast v2 text; it is kept unless
    terminal recording is off (Settings page, else ``BERTH_AUDIT_RECORD_TERMINALS``): for a
    ``TerminalRecorder``, as it was when the session opened; for text, as it is now.
    The event's details carry the recording's SHA-256, so the chain vouches for it.
    """
    if isinstance(command, (list, tuple)):
        command = " ".join(str(part) for part in command)
    info = dict(details or {})
    info.update({
        "command": command, "user": run_as, "started_at": started_at.isoformat(),
        "ended_at": ended_at.isoformat(), "duration_seconds": round((ended_at - started_at).total_seconds(), 3),
    })
    if exit_code is not None:
        info["exit_code"] = exit_code
    data = None
    if isinstance(recording, TerminalRecorder):
        keep = recording.keep
    else:
        keep = recording is not None and sitesettings.get("audit_record_terminals")
    if keep:
        text = recording.text() if isinstance(recording, TerminalRecorder) else str(recording)
        data = text.encode()
        info["recording"] = {"format": "asciicast-v2", "bytes": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()}
        if isinstance(recording, TerminalRecorder) and recording.truncated:
            info["recording"]["truncated"] = True
    return record(
        user=user, action="container.terminal", environment=environment, target_type="container",
        target_id=container_id, target_name=container_name, outcome=outcome, error=error,
        details=info, request=request, _recording=data)
