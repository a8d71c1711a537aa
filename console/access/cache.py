"""A per-request cache of what the access checks read about a user: their roles in an
environment, through their assignments and their teams'. A list page asks ``restrict`` and
``has_permission`` a dozen times; each would read the same assignments again.

Only inside a request (``AccessCacheMiddleware``): a Celery task, a websocket or a test reads
afresh each time. Any change to roles, assignments, teams or memberships empties it, so a
request that changes someone's access and checks again sees the change.
"""

from __future__ import annotations

from contextvars import ContextVar

_cache: ContextVar[dict | None] = ContextVar("berth_access_cache", default=None)


def remembered(key, compute):
    """``compute()``, once per request for the same ``key``."""
    store = _cache.get()
    if store is None:
        return compute()
    if key not in store:
        store[key] = compute()
    return store[key]


def forget(**_signal) -> None:
    store = _cache.get()
    if store:
        store.clear()


class AccessCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _cache.set({})
        try:
            return self.get_response(request)
        finally:
            _cache.reset(token)


def connect_signals() -> None:
    """Empty the cache on any change to who holds which role (access.apps.ready)."""
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from console.access.models import Assignment, Role
    from console.accounts.models import Membership, Team

    for model in (Assignment, Role, Membership, Team):
        post_save.connect(forget, sender=model, dispatch_uid=f"access-cache-save-{model.__name__}")
        post_delete.connect(forget, sender=model, dispatch_uid=f"access-cache-delete-{model.__name__}")
    m2m_changed.connect(forget, dispatch_uid="access-cache-m2m")
