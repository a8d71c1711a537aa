"""The containers list over a websocket: live CPU and memory of the rows on the page, and
rows re-rendered when engine events change them. The server renders cells and rows (the
page's own templates) as out-of-band swaps for htmx's websocket extension; the page only
says which rows it shows (``{"t": "watch", "ids": [...]}``)."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from console.core.origins import own_host
from console.inventory.follower import DEBOUNCE_SECONDS, events_group
from console.inventory.models import Container
from console.live import protocol as p
from console.live.consumers.base import HtmlSocketConsumer
from engine.errors import EngineError

ROW_REFRESH_DELAY = DEBOUNCE_SECONDS + 0.5


@database_sync_to_async
def visible_ids(user, environment) -> dict[str, int]:
    """engine id -> row pk of the containers this user sees."""
    rows = Container.objects.restrict(user, "containers.view", environment)
    return dict(rows.values_list("container_id", "pk"))


class ContainersListConsumer(HtmlSocketConsumer):
    """The containers list: live CPU and memory of the rows on the page, and rows re-rendered
    when their container changes state, whoever changed it (engine events)."""

    permission = "containers.view"
    uses_engine = True

    def listen_to(self):
        return [events_group(self.environment)]

    async def ready(self):
        self.watched: set[int] = set()
        self.visible = await visible_ids(self.user, self.environment)
        self.pending: set[str] = set()
        self.refresh_task = None
        self.spawn(self.stats_loop())

    async def on_message(self, text_data, bytes_data):
        message = p.parse_json(text_data, bytes_data)
        if message["t"] == "watch":
            ids = message.get("ids")
            if not isinstance(ids, list) or len(ids) > 200 or not all(
                    isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise p.BadMessage("ids must be a list of row ids")
            self.watched = set(ids)
        elif message["t"] != "pong":
            raise p.BadMessage(f"unknown message {message['t']!r}")

    async def stats_loop(self):
        previous: dict[str, dict] = {}
        while True:
            await asyncio.sleep(2.0)
            by_pk = {pk: cid for cid, pk in self.visible.items() if pk in self.watched}
            cells = []
            for pk, cid in by_pk.items():
                try:
                    current = await asyncio.to_thread(self.driver.stats_sample, cid)
                except (EngineError, OSError):
                    previous.pop(cid, None)
                    continue
                if cid in previous:
                    summary = self.driver.stats_summary(current, previous[cid])
                    cells.append(render_to_string("containers/_live_cells.html", {
                        "pk": pk, "cpu": summary["cpu_percent"], "memory": summary["memory_usage"],
                        "limit": summary["memory_limit"]}))
                previous[cid] = current
            if cells and not self.closed:
                await self.send(text_data="".join(cells))

    async def engine_event(self, message):
        """An engine event from the follower process (console.inventory.follower), which
        reconciles the mirror DEBOUNCE seconds later: re-render the rows after that."""
        event = message.get("event") or {}
        if event.get("Type") != "container" or event.get("Action", "").startswith("exec_"):
            return
        self.pending.add(event["Actor"]["ID"])
        if self.refresh_task is None or self.refresh_task.done():
            self.refresh_task = self.spawn(self.refresh_soon())

    async def refresh_soon(self):
        await asyncio.sleep(ROW_REFRESH_DELAY)  # after the follower's reconcile
        changed, self.pending = self.pending, set()
        await self.refresh(changed)

    async def refresh(self, changed: set[str]):
        before = self.visible
        self.visible = await visible_ids(self.user, self.environment)
        parts = []
        for cid in changed:
            pk = self.visible.get(cid)
            if pk is not None and pk in self.watched:
                parts.append(await _render_row(pk, own_host(self.scope)))
        for cid in changed:
            if cid in before and cid not in self.visible:  # removed, or out of sight now
                parts.append(f'<tr id="container-row-{int(before[cid])}" hx-swap-oob="delete"></tr>')
        if any(cid in self.visible and cid not in before for cid in changed):
            parts.append('<span hx-swap-oob="innerHTML:#containers-added">1</span>')  # the page reloads its rows
        if parts and not self.closed:
            await self.send(text_data="".join(parts))


@database_sync_to_async
def _render_row(pk, host):
    container = Container.objects.filter(pk=pk).first()
    if container is None:
        return ""
    return render_to_string("containers/_row.html", {"c": container, "host": host, "oob": True})

