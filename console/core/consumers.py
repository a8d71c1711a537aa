"""Websocket consumers of the core app.

Close codes used by every Berth consumer (see docs/websockets.md):
4400 a message not in the protocol, 4401 not signed in, 4403 not allowed,
4404 no such object. The Origin is checked before any consumer runs (asgi.py).
"""

from __future__ import annotations

import asyncio
import datetime
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.template.loader import render_to_string

from console.core.environments import environment_for_session, has_role
from console.core.models import Environment

CLOSE_BAD_MESSAGE = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


@database_sync_to_async
def current_environment(scope) -> Environment:
    return environment_for_session(scope["session"])


@database_sync_to_async
def _has_role(user, environment) -> bool:
    return has_role(user, environment)


class EngineFactsConsumer(AsyncJsonWebsocketConsumer):
    """Shows the engine facts of the current environment, as a worker reports them.

    On connect it shows the last known facts at once, then asks a worker for fresh
    ones; the worker's answer arrives through the channel layer group of the
    environment. If no worker answers in time, the page says so.

    Only users with a role in the environment get its facts. Each socket has at most one
    request in flight (until the worker answers or ``worker_timeout`` passes) and asks at
    most every ``min_interval`` seconds: a refresh asked for meanwhile is dropped, not queued.
    """

    worker_timeout = 15.0
    min_interval = 2.0

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.environment = await current_environment(self.scope)
        if self.environment is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        if not await _has_role(user, self.environment):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = self.environment.facts_group
        self.watchdog = None
        self.asked_at = None
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        if self.environment.facts:
            await self.send_facts(
                state="refreshing", facts=self.environment.facts,
                reported_at=self.environment.facts_reported_at,
                worker=self.environment.facts_reported_by,
            )
        await self.request_refresh()

    async def disconnect(self, code):
        if getattr(self, "watchdog", None):
            self.watchdog.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        from console.live.protocol import BadMessage, decode

        try:
            if text_data is None:
                raise BadMessage("binary frame")
            content = decode(text_data)
        except BadMessage:
            content = None
        if content is None or content.get("action") != "refresh":
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        await self.request_refresh()

    async def request_refresh(self):
        from console.core.tasks import refresh_engine_facts

        now = time.monotonic()
        if self.watchdog is not None or (self.asked_at is not None and now - self.asked_at < self.min_interval):
            return  # one in flight, or asked a moment ago: its answer comes to this socket too
        self.asked_at = now
        await asyncio.to_thread(refresh_engine_facts.delay, self.environment.pk)
        if self.watchdog:
            self.watchdog.cancel()
        self.watchdog = asyncio.ensure_future(self._no_worker_after_timeout())

    async def _no_worker_after_timeout(self):
        await asyncio.sleep(self.worker_timeout)
        self.watchdog = None
        await self.send_facts(state="no-worker", timeout=int(self.worker_timeout))

    async def engine_facts(self, event):
        """A worker's report, from the group."""
        if self.watchdog:
            self.watchdog.cancel()
            self.watchdog = None
        reported_at = event.get("reported_at")
        if reported_at:
            reported_at = datetime.datetime.fromisoformat(reported_at)
        await self.send_facts(
            state=event["state"], facts=event.get("facts"), error=event.get("error"),
            reported_at=reported_at, worker=event.get("worker"),
        )

    async def send_facts(self, **context):
        await self.send(text_data=render_to_string("core/_engine_facts.html", context))
