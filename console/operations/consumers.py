"""Live progress of one operation: its page re-renders the progress block on
each update the worker publishes (see runner.publish)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from console.access import revocation
from console.access.permissions import restrict
from console.core.consumers import CLOSE_BAD_MESSAGE, CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from console.operations.models import Operation
from console.operations.services import visible_operations


@database_sync_to_async
def _load(user, operation_id):
    operation = Operation.objects.filter(pk=operation_id).select_related("environment").first()
    if operation is None:
        return None
    # Visible in its own environment to this user, or not at all (404, not 403).
    visible = restrict(visible_operations(user, operation.environment), user, "operations.view",
                       operation.environment)
    return visible.filter(pk=operation.pk).first()


@database_sync_to_async
def _active_user(pk):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=pk, is_active=True).first()


@database_sync_to_async
def _render(operation_id):
    operation = Operation.objects.get(pk=operation_id)
    return render_to_string("operations/_progress.html", {"operation": operation, "oob": True})


class OperationConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        operation = await _load(user, self.scope["url_route"]["kwargs"]["operation_id"])
        if operation is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.operation_id = operation.pk
        self.group = operation.group
        self.user = user
        # When someone's access changes, check again (see console.access.revocation).
        self.access_groups = [revocation.group_for(user.pk), revocation.EVERYONE]
        for group in [self.group, *self.access_groups]:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        # Anything that happened between the page render and now.
        await self.send(text_data=await _render(self.operation_id))

    async def disconnect(self, code):
        if hasattr(self, "group"):
            for group in [self.group, *self.access_groups]:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.close(code=CLOSE_BAD_MESSAGE)  # this socket only listens

    async def access_changed(self, event):
        self.user = await _active_user(self.user.pk)  # the one from connect may have been disabled since
        if self.user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
        elif await _load(self.user, self.operation_id) is None:
            await self.close(code=CLOSE_NOT_FOUND)

    async def operation_update(self, event):
        if event.get("kind") == "line":
            # Build output: append the line at once (the row is saved at most twice a second).
            await self.send(text_data=render_to_string("operations/_line.html", {"text": event.get("text", "")}))
            return
        await self.send(text_data=await _render(self.operation_id))
