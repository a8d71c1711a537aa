"""Sign-in, sign-in failure and sign-out, from Django's auth signals."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from console import audit


@receiver(user_logged_in, dispatch_uid="berth.audit.sign_in")
def signed_in(sender, request, user, **kwargs):
    audit.record(user=user, action="auth.sign_in", target_type="user", target_id=str(user.pk),
                 target_name=user.get_username(), request=request)


@receiver(user_login_failed, dispatch_uid="berth.audit.sign_in_failed")
def sign_in_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in ``credentials``; keep only the name.
    from django.contrib.auth import get_user_model

    username = str(credentials.get("username", "") or "")[:150]
    known = bool(username) and get_user_model()._default_manager.filter(
        **{get_user_model().USERNAME_FIELD: username}).exists()
    audit.record(user=None, actor_name=username, action="auth.sign_in", target_type="user",
                 target_name=username, outcome="failed", error="Wrong username or password.",
                 details={"known_user": known}, request=request)


@receiver(user_logged_out, dispatch_uid="berth.audit.sign_out")
def signed_out(sender, request, user, **kwargs):
    if user is None:
        return  # signing out without a session: nothing happened
    audit.record(user=user, action="auth.sign_out", target_type="user", target_id=str(user.pk),
                 target_name=user.get_username(), request=request)
