"""The dashboard's engine facts of the current environment, as a worker reports them.
HTML frames, swapped by htmx's websocket extension."""

from __future__ import annotations

import asyncio
import datetime
import time

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from console.access.permissions import has_role
from console.live import protocol as p
from console.live.consumers.base import HtmlSocketConsumer


@database_sync_to_async
def _has_role(user, environment) -> bool:
    return has_role(user, environment)


class EngineFactsConsumer(HtmlSocketConsumer):
    """On connect it shows the last known facts at once, then asks a worker for fresh
    ones; the worker's answer arrives through the channel layer group of the
    environment. If no worker answers in time, the page says so.

    Only users with a role in the environment get its facts. Each socket has at most one
    request in flight (until the worker answers or ``worker_timeout`` passes) and asks at
    most every ``min_interval`` seconds: a refresh asked for meanwhile is dropped, not queued.
    """

    worker_timeout = 15.0
    min_interval = 2.0

    async def permitted(self) -> bool:
        return await _has_role(self.user, self.environment)

    def listen_to(self):
        return [self.environment.facts_group]

    async def ready(self):
        self.watchdog = None
        self.asked_at = None
        if self.environment.facts:
            await self.send_facts(
                state="refreshing", facts=self.environment.facts,
                reported_at=self.environment.facts_reported_at,
                worker=self.environment.facts_reported_by,
            )
        await self.request_refresh()

    async def on_message(self, text_data, bytes_data):
        if text_data is None or bytes_data is not None:
            raise p.BadMessage("binary frame")
        if p.decode(text_data).get("action") != "refresh":
            raise p.BadMessage("not a refresh")
        await self.request_refresh()

    async def request_refresh(self):
        from console.inventory.tasks import refresh_engine_facts

        now = time.monotonic()
        if self.watchdog is not None or (self.asked_at is not None and now - self.asked_at < self.min_interval):
            return  # one in flight, or asked a moment ago: its answer comes to this socket too
        self.asked_at = now
        await asyncio.to_thread(refresh_engine_facts.delay, self.environment.pk)
        self.watchdog = self.spawn(self._no_worker_after_timeout())

    async def _no_worker_after_timeout(self):
        await asyncio.sleep(self.worker_timeout)
        self.watchdog = None
        await self.send_facts(state="no-worker", timeout=int(self.worker_timeout))

    async def engine_facts(self, event):
        """A worker's report, from the group."""
        if not self.is_ready:
            return
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
        if not self.closed:
            await self.send(text_data=render_to_string("core/_engine_facts.html", context))
