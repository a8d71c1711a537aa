"""What every page tells administrators: names under a sign-in attack (``signin.under_attack``)."""

from __future__ import annotations


def sign_in_attacks(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not (user.is_authenticated and user.is_active and user.is_superuser):
        return {}
    from console.accounts.signin import under_attack

    return {"sign_in_attacks": under_attack()}
