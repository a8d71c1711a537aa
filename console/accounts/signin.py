"""Sign-in protection: lockout with back-off after repeated failures.

Failures are counted per name as typed (``user:<name>``) and per address
(``ip:<address>``). From the threshold-th failure on, each new failure locks the key for
twice as long as the last (30 s, 1 min, 2 min... up to 15 min). The thresholds are read at
each attempt: ``signin_user_threshold`` and ``signin_ip_threshold`` from the Settings page,
else ``settings.SIGNIN_USER_THRESHOLD`` and ``SIGNIN_IP_THRESHOLD`` (the environment's).
A name that does not exist is throttled exactly like one that does, and the
locked message is the same for both: the lockout tells nobody who has an account.
Failed two-factor codes count like wrong passwords.
"""

from __future__ import annotations

import datetime as dt
import math

from django.db import transaction
from django.utils import timezone

from console import audit
from console.accounts.models import SignInThrottle
from console.sitesettings import catalog

BASE_LOCK_SECONDS = 30
MAX_LOCK_SECONDS = 15 * 60
FORGET_AFTER = dt.timedelta(hours=24)  # a key with no failure for this long starts again from zero


def user_threshold() -> int:
    return catalog.get("signin_user_threshold")


def ip_threshold() -> int:
    return catalog.get("signin_ip_threshold")


def _keys(username: str, ip: str | None) -> list[tuple[str, int]]:
    """The keys a sign-in counts against, with their thresholds; a threshold of 0 is off."""
    thresholds = catalog.get_many("signin_user_threshold", "signin_ip_threshold")
    keys = [(f"user:{(username or '').strip().lower()[:150]}", thresholds["signin_user_threshold"])]
    if ip:
        keys.append((f"ip:{ip}", thresholds["signin_ip_threshold"]))
    return [(key, threshold) for key, threshold in keys if threshold > 0]


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def locked_for(username: str, ip: str | None) -> int:
    """Seconds until this name (or address) may try again; 0 when it may now."""
    now = timezone.now()
    keys = [k for k, _ in _keys(username, ip)]
    wait = 0.0
    for row in SignInThrottle.objects.filter(key__in=keys, locked_until__gt=now):
        wait = max(wait, (row.locked_until - now).total_seconds())
    return math.ceil(wait)


def lock_seconds(failures: int, threshold: int) -> int:
    if failures < threshold:
        return 0
    return min(BASE_LOCK_SECONDS * 2 ** (failures - threshold), MAX_LOCK_SECONDS)


def failed(username: str, ip: str | None, request=None) -> None:
    now = timezone.now()
    for key, threshold in _keys(username, ip):
        with transaction.atomic():
            row, _ = SignInThrottle.objects.select_for_update().get_or_create(key=key)
            if row.last_failure_at and now - row.last_failure_at > FORGET_AFTER:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            seconds = lock_seconds(row.failures, threshold)
            if seconds:
                row.locked_until = now + dt.timedelta(seconds=seconds)
            row.save()
        if seconds:
            _audit_lockout(username, key, row.locked_until, row.failures, request)


def succeeded(username: str, ip: str | None) -> None:
    """A full sign-in (password and, when on, the code): the name's count starts again."""
    SignInThrottle.objects.filter(key=f"user:{(username or '').strip().lower()[:150]}").delete()


def _audit_lockout(username, key, until, failures, request) -> None:
    hook = getattr(audit, "record_sign_in_lockout", None)
    details = {"key": key.split(":", 1)[0], "failures": failures}
    try:
        if hook is not None:
            hook(username=username, request=request, reason="repeated failures", until=until, details=details)
        else:
            audit.record(user=None, action="auth.lockout", target_type="user", target_name=username,
                         outcome="denied", details={**details, "until": until.isoformat()})
    except Exception:  # the lockout holds even if the audit log cannot be written
        import logging

        logging.getLogger(__name__).exception("could not audit a sign-in lockout")
