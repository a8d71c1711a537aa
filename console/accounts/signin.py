"""Sign-in protection: lockout with back-off after repeated failures.

Failures are counted per (name, address) pair (``pair:<address>|<name>``), per address
(``ip:<address>``) and per name alone (``user:<name>``). The pair locks first, so a
stranger elsewhere who types an administrator's name five times locks out only
themselves; the name alone locks only at a much higher threshold (many addresses at
once). From the threshold-th failure on, each new failure locks the key for twice as long
as the last (30 s, 1 min, 2 min... up to 15 min). The thresholds are read at each attempt:
``signin_user_threshold`` (the pair), ``signin_ip_threshold`` and ``signin_name_threshold``
from the Settings page, else ``settings.SIGNIN_USER_THRESHOLD``, ``SIGNIN_IP_THRESHOLD`` and
``SIGNIN_NAME_THRESHOLD`` (the environment's).

A name is *under attack* when it has failed more than one address's lockout's worth
(twice the pair threshold) from more than one address: that is audited once
(``auth.name_under_attack``, until the count is forgotten) and administrators see a
banner (``under_attack``).

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
ALERT_SHOWN_FOR = dt.timedelta(hours=24)  # how long administrators see the banner after an attack


def user_threshold() -> int:
    """Failures of one name from one address before that pair is locked."""
    return catalog.get("signin_user_threshold")


def ip_threshold() -> int:
    return catalog.get("signin_ip_threshold")


def name_threshold() -> int:
    return catalog.get("signin_name_threshold")


def _name(username: str) -> str:
    return (username or "").strip().lower()[:150]


def _pair_key(name: str, ip: str | None) -> str:
    return f"pair:{ip or '-'}|{name}"[:200]


def _keys(username: str, ip: str | None) -> list[tuple[str, int]]:
    """The keys a sign-in counts against, with their thresholds; a threshold of 0 is off."""
    thresholds = catalog.get_many("signin_user_threshold", "signin_ip_threshold", "signin_name_threshold")
    name = _name(username)
    keys = [(_pair_key(name, ip), thresholds["signin_user_threshold"])]
    if ip:
        keys.append((f"ip:{ip}", thresholds["signin_ip_threshold"]))
    keys.append((f"user:{name}", thresholds["signin_name_threshold"]))
    return [(key, threshold) for key, threshold in keys if threshold > 0]


def client_ip(request) -> str | None:
    """The client's address, through the trusted proxies (``BERTH_TRUSTED_PROXIES``) as the
    audit log reads it: behind a proxy, each client gets its own pair, not the proxy's."""
    from console.audit.context import client_ip as source

    return source(request.META) if request is not None else None


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
                row.failures, row.alerted_at = 0, None
            row.failures += 1
            row.last_failure_at = now
            seconds = lock_seconds(row.failures, threshold)
            if seconds:
                row.locked_until = now + dt.timedelta(seconds=seconds)
            alert = key.startswith("user:") and row.alerted_at is None and _under_attack(row, username)
            if alert:
                row.alerted_at = now
            row.save()
        if seconds:
            _audit_lockout(username, key, row.locked_until, row.failures, request)
        if alert:
            _audit_attack(username, row, request)


def _addresses(name: str) -> int:
    """How many addresses have failed with this name lately."""
    return SignInThrottle.objects.filter(key__startswith="pair:", key__endswith=f"|{name}",
                                         last_failure_at__gt=timezone.now() - FORGET_AFTER).count()


def _under_attack(row: SignInThrottle, username: str) -> bool:
    """More failures than one address may make, from more than one address."""
    pair = user_threshold()
    limit = 2 * pair if pair else name_threshold()
    return bool(limit) and row.failures >= limit and _addresses(_name(username)) > 1


def succeeded(username: str, ip: str | None) -> None:
    """A full sign-in (password and, when on, the code): this pair's count and the name's start
    again (the name's alert stays for the banner)."""
    name = _name(username)
    SignInThrottle.objects.filter(key=_pair_key(name, ip)).delete()
    SignInThrottle.objects.filter(key=f"user:{name}").update(failures=0, locked_until=None)


def under_attack() -> list[dict]:
    """Names under attack lately, for the administrators' banner: ``[{"name", "since"}]``."""
    rows = (SignInThrottle.objects.filter(key__startswith="user:",
                                          alerted_at__gt=timezone.now() - ALERT_SHOWN_FOR)
            .order_by("-alerted_at")[:5])
    return [{"name": row.key.split(":", 1)[1], "since": row.alerted_at} for row in rows]


def _audit_attack(username, row, request) -> None:
    try:
        audit.record(user=None, actor_name=(username or "")[:150], action="auth.name_under_attack",
                     target_type="user", target_name=(username or "")[:150], outcome="denied",
                     details={"failures": row.failures, "addresses": _addresses(_name(username)),
                              "name_locked_until": row.locked_until.isoformat() if row.locked_until else None},
                     request=request)
    except Exception:  # the protection holds even if the audit log cannot be written
        import logging

        logging.getLogger(__name__).exception("could not audit a name under attack")


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
