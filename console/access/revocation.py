"""Telling open websockets that someone's access changed, so they check again.

A consumer that streams something a user may lose joins ``group_for(user)`` and
``EVERYONE`` when it connects, and handles ``{"type": "access.changed"}`` by
loading its object again through ``restrict`` and closing (4404) when it is no
longer visible. Services call ``access_changed(...)`` after a change that can
take access away (an assignment removed, a user disabled, a team member removed,
a role edited, an ownership changed); the message goes out once the change is
committed.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from django.db import transaction

log = logging.getLogger(__name__)

EVERYONE = "access.everyone"
MESSAGE = {"type": "access.changed"}


def group_for(user_or_id) -> str:
    return f"access.user.{getattr(user_or_id, 'pk', user_or_id)}"


def access_changed(users=None) -> None:
    """``users``: the users concerned (instances or ids); None for everyone (a role was edited)."""
    groups = [EVERYONE] if users is None else [group_for(u) for u in users]

    def send():
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        for group in groups:
            try:
                async_to_sync(layer.group_send)(group, dict(MESSAGE))
            except Exception:  # the change holds; sockets re-check on their next event anyway
                log.exception("could not tell %s that access changed", group)

    transaction.on_commit(send)
