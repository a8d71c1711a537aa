"""The engine's events over a websocket: the last hour, then live, for what the user sees.
Rows rendered here, added to the page's table by htmx's websocket extension (an out-of-band
swap), like every other table of the console."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from django.template.loader import render_to_string

from console.inventory.follower import events_group
from console.live.consumers.base import HtmlSocketConsumer, allowed
from console.live.consumers.containers import visible_ids

BACKLOG_SECONDS = 3600
BACKLOG_EVENTS = 500


class EventsConsumer(HtmlSocketConsumer):
    """The engine's events for what the user sees: the last hour first, then live ones as the
    follower process publishes them."""

    permission = "containers.view"
    uses_engine = True

    def listen_to(self):
        return [events_group(self.environment)]

    async def ready(self):
        self.visible = await visible_ids(self.user, self.environment)
        self.images = await allowed(self.user, "images.view", self.environment)
        self.refreshed = time.monotonic()
        since = time.time() - BACKLOG_SECONDS
        backlog = await asyncio.to_thread(
            lambda: list(self.driver.follow_events(since=since, stop=lambda: True)))
        for event in backlog[-BACKLOG_EVENTS:]:
            await self.engine_event({"event": event})

    async def engine_event(self, message):
        event = message.get("event") or {}
        if await self.may_see(event):
            await self.send(text_data=render_to_string("live/_event_row.html", event_row(event)))

    async def may_see(self, event) -> bool:
        kind = event.get("Type")
        if kind == "image":
            return self.images
        if kind != "container":
            return bool(getattr(self.user, "is_superuser", False))
        cid = event.get("Actor", {}).get("ID", "")
        if cid not in self.visible and time.monotonic() - self.refreshed > 2:
            self.visible = await visible_ids(self.user, self.environment)
            self.refreshed = time.monotonic()
        # a removed container has left the mirror: only administrators still see its events
        return cid in self.visible or bool(getattr(self.user, "is_superuser", False))



def event_row(event: dict) -> dict:
    """The template's view of a Docker-shaped event."""
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    nanos = event.get("timeNano") or int(event.get("time") or 0) * 1_000_000_000
    return {
        "type": event.get("Type", ""), "action": event.get("Action", ""),
        "when": dt.datetime.fromtimestamp(nanos / 1e9, tz=dt.UTC),
        "name": attributes.get("name", ""), "id": actor.get("ID", ""),
        "details": " ".join(f"{key}={value}" for key, value in attributes.items() if key != "name"),
    }
