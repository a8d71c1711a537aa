"""Live progress of one operation: its page re-renders the progress block on each update
the worker publishes (see console.operations.runner.publish). HTML frames, swapped by
htmx's websocket extension."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from console.live import protocol as p
from console.live.consumers.base import HtmlSocketConsumer, Refused
from console.operations.models import Operation


@database_sync_to_async
def _load(user, operation_id):
    operation = Operation.objects.filter(pk=operation_id).select_related("environment").first()
    if operation is None:
        return None
    # Visible in its own environment to this user, or not at all (404, not 403).
    visible = Operation.objects.restrict(user, "operations.view", operation.environment)
    return operation if visible.filter(pk=operation.pk).exists() else None


@database_sync_to_async
def _render(operation_id):
    operation = Operation.objects.get(pk=operation_id)
    return render_to_string("operations/_progress.html", {"operation": operation, "oob": True})


class OperationConsumer(HtmlSocketConsumer):
    """An operation's progress and output as it runs, for whoever may see the operation."""

    async def locate(self):
        operation = await _load(self.user, self.scope["url_route"]["kwargs"]["operation_id"])
        if operation is None:
            raise Refused(p.CLOSE_NOT_FOUND, "No such operation.")
        self.operation_id, self.group = operation.pk, operation.group
        self.environment = operation.environment

    def listen_to(self):
        return [self.group]

    async def ready(self):
        # Anything that happened between the page render and now.
        await self.send(text_data=await _render(self.operation_id))

    async def on_message(self, text_data, bytes_data):
        raise p.BadMessage("this socket only listens")

    async def operation_update(self, event):
        if self.closed:
            return
        if event.get("kind") == "line":
            # Build output: append the line at once (the row is saved at most twice a second).
            await self.send(text_data=render_to_string("operations/_line.html", {"text": event.get("text", "")}))
            return
        await self.send(text_data=await _render(self.operation_id))
