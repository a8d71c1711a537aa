"""The part every Berth websocket shares (see docs/websockets.md).

A socket is accepted first and then, when its user may not use it, closed with a code the
page can show (a socket refused before the handshake only shows 1006 in a browser): 4401
signed out, 4404 no such object or not visible, 4403 not allowed (or, where the socket acts,
no valid page token), 4400 a message not in the protocol. The Origin was checked in asgi.py.

The socket joins the revocation groups (console.access.revocation) *before* it checks: a
user disabled between the check and the join would otherwise keep the socket, the message
having gone out before anyone listened. Each later ``access.changed`` runs the same checks
again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from console.access import revocation
from console.access.permissions import has_permission
from console.core import sockettokens
from console.core.environments import environment_for_session
from console.live import protocol as p

log = logging.getLogger(__name__)


@database_sync_to_async
def active_user(pk):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=pk, is_active=True).first()


@database_sync_to_async
def allowed(user, permission, environment, container_id=None) -> bool:
    resource = ("container", container_id) if container_id else None
    return has_permission(user, permission, environment, resource)


@database_sync_to_async
def session_environment(scope):
    return environment_for_session(scope["session"])


def query_of(scope) -> dict[str, str]:
    from urllib.parse import parse_qs

    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[-1] for k, v in parse_qs(raw).items()}


class Refused(Exception):
    """The user may not use this socket: close with ``code`` after saying ``reason``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


class SocketConsumer(AsyncWebsocketConsumer):
    """Accept, check (user, object, permission, page token), then ``ready()``; the heartbeat,
    the socket's tasks, bounded messages, and checking again when access changes.

    A subclass says what it is about in ``locate()`` (raise Refused(CLOSE_NOT_FOUND, ...) when
    it is missing or invisible, set ``self.environment``), what it needs in ``permission``
    (or ``permitted()``), and, when it acts, its page token's purpose in ``token_purpose()``.
    """

    permission: str | None = None
    token_refusal = "This socket needs the console's page: reload it."
    heartbeat_seconds: float | None = p.HEARTBEAT_SECONDS  # None: no pings (HTML sockets)
    uses_engine = False  # sets self.driver for the environment

    async def connect(self):
        self.tasks: list[asyncio.Task] = []
        self.closed = False
        self.is_ready = False
        self.groups_joined: list[str] = []
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(p.CLOSE_UNAUTHENTICATED, "Sign in again.")
            return
        self.user = user
        await self.join(revocation.group_for(user.pk), revocation.EVERYONE)
        try:
            await self.check()
            await self.check_token()
        except Refused as refused:
            await self.refuse(refused.code, refused.reason)
            return
        if self.uses_engine:
            from console.drivers import driver_for

            self.driver = driver_for(self.environment)
        self.last_heard = time.monotonic()
        await self.join(*self.listen_to())
        if self.heartbeat_seconds:
            self.spawn(self.heartbeat())
        self.is_ready = True
        await self.ready()

    # ------------------------------------------------------------------ the checks
    async def check(self, audit: bool = True) -> None:
        """The user (read again: they may have been disabled since the session was loaded),
        the object, the permission. Raises Refused. ``audit``: a refusal is worth a
        ``denied()`` (at connect; not when access is taken away later)."""
        user = await active_user(self.user.pk)
        if user is None:
            raise Refused(p.CLOSE_UNAUTHENTICATED, "Sign in again.")
        self.user = user
        await self.locate()
        if not await self.permitted():
            if audit:
                await self.denied()
            raise Refused(p.CLOSE_FORBIDDEN, "You may not do this here.")

    async def locate(self) -> None:
        """Find what the socket is about and set ``self.environment`` (the session's
        environment unless a subclass says otherwise)."""
        if getattr(self, "environment", None) is None:
            self.environment = await session_environment(self.scope)
        if self.environment is None:
            raise Refused(p.CLOSE_NOT_FOUND, "No environment.")

    async def permitted(self) -> bool:
        return self.permission is None or await allowed(self.user, self.permission, self.environment)

    def token_purpose(self) -> str | None:
        """Where the socket acts: the purpose its page's token must carry (sockettokens)."""
        return None

    async def check_token(self) -> None:
        purpose = self.token_purpose()
        if purpose is None:
            return
        session = self.scope.get("session")
        if not sockettokens.valid(query_of(self.scope).get("token"), self.user,
                                  getattr(session, "session_key", None), purpose):
            await self.denied("no valid page token")
            raise Refused(p.CLOSE_FORBIDDEN, self.token_refusal)

    async def denied(self, reason: str = "permission"):
        """The permission or token check failed (a hook to audit it)."""

    async def access_changed(self, event):
        """Someone's access changed (console.access.revocation): ours may have too."""
        if self.closed or not self.is_ready:
            return
        try:
            await self.check(audit=False)
        except Refused as refused:
            await self.refuse(refused.code, "Your access to this has changed.")

    # ------------------------------------------------------------------ groups
    def listen_to(self) -> list[str]:
        """Channel-layer groups to hear once the checks passed."""
        return []

    async def join(self, *groups: str):
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)

    async def leave_groups(self):
        joined, self.groups_joined = getattr(self, "groups_joined", []), []
        for group in joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    # ------------------------------------------------------------------ hooks
    async def ready(self):
        """The checks passed."""

    async def finish(self):
        """The socket is gone or closing (hook, called once)."""

    # ------------------------------------------------------------------ closing
    async def refuse(self, code: int, reason: str = ""):
        if reason and not self.closed:
            await self.send_refused(code, reason)
        await self.close_with(code)

    async def send_refused(self, code: int, reason: str):
        await self.send_info(t="refused", code=code, message=reason)

    async def close_with(self, code: int):
        if not self.closed:
            self.closed = True
            await self.close(code=code)
        await self.stop_tasks()
        # Release now (a terminal's process, a follower): the client's disconnect may come
        # late, or never from a client that just goes away.
        await self.finish_once()

    async def disconnect(self, code):
        self.closed = True
        await self.stop_tasks()
        await self.finish_once()

    async def finish_once(self):
        if not getattr(self, "finished", False):
            self.finished = True
            await self.leave_groups()
            await self.finish()

    # ------------------------------------------------------------------ tasks
    def spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self.tasks.append(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task):
        if task in self.tasks:
            self.tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("socket task failed", exc_info=task.exception())
            asyncio.ensure_future(self.close_with(p.CLOSE_UNAVAILABLE))

    async def stop_tasks(self):
        current = asyncio.current_task()
        for task in list(getattr(self, "tasks", [])):
            if task is not current:
                task.cancel()

    async def heartbeat(self):
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            if time.monotonic() - self.last_heard > p.HEARTBEAT_TIMEOUT:
                await self.close_with(p.CLOSE_IDLE)
                return
            await self.send_ping()

    async def send_ping(self):
        await self.send_info(t="ping")

    async def send_info(self, **message):
        if not self.closed:
            await self.send(text_data=json.dumps(message, default=str))

    # ------------------------------------------------------------------ messages
    async def receive(self, text_data=None, bytes_data=None):
        if getattr(self, "closed", True):
            return
        if not self.is_ready:  # nothing is in the protocol before the checks passed
            await self.close_with(p.CLOSE_BAD_MESSAGE)
            return
        self.last_heard = time.monotonic()
        try:
            await self.on_message(text_data, bytes_data)
        except p.BadMessage as exc:
            log.info("socket: bad message (%s)", exc)
            await self.close_with(p.CLOSE_BAD_MESSAGE)

    async def on_message(self, text_data, bytes_data):
        """A client message; raise p.BadMessage for one not in the protocol. The JSON ones
        go through p.parse_json / p.decode, which bound their size and depth."""
        message = p.parse_json(text_data, bytes_data)
        if message["t"] != "pong":
            raise p.BadMessage(f"unknown message {message['t']!r}")


class ContainerConsumer(SocketConsumer):
    """A socket about one container of the mirror (``<pk>`` in the path)."""

    permission = "containers.view"
    uses_engine = True

    async def locate(self):
        self.container = await visible_container(self.user, self.scope["url_route"]["kwargs"]["pk"])
        if self.container is None:
            raise Refused(p.CLOSE_NOT_FOUND, "No such container.")
        self.environment = self.container.environment

    async def permitted(self) -> bool:
        return await allowed(self.user, self.permission, self.environment, self.container.container_id)


@database_sync_to_async
def visible_container(user, pk):
    from console.inventory.models import Container

    container = Container.objects.filter(pk=pk).select_related("environment").first()
    if container is None:
        return None
    visible = Container.objects.restrict(user, "containers.view", container.environment)
    return visible.filter(pk=pk).exists() and container or None


class HtmlSocketConsumer(SocketConsumer):
    """A socket whose page is htmx's websocket extension: it swaps in the HTML it gets,
    answers no pings (daphne's own find dead connections) and reads no "refused" message,
    so the close code alone says why."""

    heartbeat_seconds = None

    async def send_refused(self, code: int, reason: str):
        pass
