"""Optional TOTP two-factor sign-in (RFC 6238, 30 s steps, 6 digits), with pyotp.

The secret is encrypted at rest (``core.crypto``); a code is accepted once
(``last_used_step``), with one step of clock drift either way.
"""

from __future__ import annotations

import time

import pyotp
from django.db import transaction
from django.utils import timezone

from console.accounts.models import TwoFactor
from console.core import crypto

ISSUER = "Berth"


def device_of(user) -> TwoFactor | None:
    return TwoFactor.objects.filter(user=user).first()


def enabled(user) -> bool:
    device = device_of(user)
    return device is not None and device.enabled


def begin(user) -> TwoFactor:
    """A new, unconfirmed secret (replacing an unconfirmed one)."""
    TwoFactor.objects.filter(user=user, confirmed_at__isnull=True).delete()
    device = device_of(user)
    if device is not None:
        return device
    return TwoFactor.objects.create(user=user, secret_encrypted=crypto.encrypt(pyotp.random_base32()))


def secret(device: TwoFactor) -> str:
    return crypto.decrypt(device.secret_encrypted)


def provisioning_uri(device: TwoFactor) -> str:
    return pyotp.TOTP(secret(device)).provisioning_uri(name=device.user.get_username(), issuer_name=ISSUER)


def verify(device: TwoFactor, code: str, now: float | None = None) -> bool:
    """True once per valid code; a replayed code is refused."""
    code = "".join((code or "").split())
    if not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(secret(device))
    now = time.time() if now is None else now
    with transaction.atomic():
        device = TwoFactor.objects.select_for_update().get(pk=device.pk)
        for drift in (0, -1, 1):
            at = now + drift * totp.interval
            step = int(at // totp.interval)
            if step > device.last_used_step and totp.verify(code, for_time=at):
                device.last_used_step = step
                device.save(update_fields=["last_used_step"])
                return True
    return False


def confirm(device: TwoFactor, code: str) -> bool:
    if not verify(device, code):
        return False
    device.confirmed_at = timezone.now()
    device.save(update_fields=["confirmed_at"])
    return True


def disable(user) -> None:
    TwoFactor.objects.filter(user=user).delete()
