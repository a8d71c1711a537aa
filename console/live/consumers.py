"""Websocket consumers: a container's logs, its terminal, its stats; the containers list's
live rows and stats; the engine's events.

Every socket is accepted first and then, when the user may not use it, closed with a code
the page can show (4401 signed out, 4404 no such container or not visible, 4403 not
allowed, 4400 a message not in the protocol). The Origin was checked in asgi.py.
Engine work runs in threads (``asyncio.to_thread``) or as small non-blocking reads, so
daphne's event loop never waits on a disk or a process.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import shlex
import threading
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from console.access import revocation
from console.access.permissions import has_permission, restrict
from console.core import sockettokens
from console.core.consumers import current_environment
from console.drivers import driver_for
from console.inventory.follower import DEBOUNCE_SECONDS, events_group
from console.inventory.models import Container
from console.live import limits
from console.live import protocol as p
from engine.errors import EngineError, InvalidArgument, NotFound

log = logging.getLogger(__name__)

ROW_REFRESH_DELAY = DEBOUNCE_SECONDS + 0.5
BACKLOG_SECONDS = 3600
BACKLOG_EVENTS = 500


@database_sync_to_async
def _visible_container(user, pk):
    container = Container.objects.filter(pk=pk).select_related("environment").first()
    if container is None:
        return None
    visible = restrict(Container.objects.all(), user, "containers.view", container.environment)
    return visible.filter(pk=pk).first() and container


@database_sync_to_async
def _active_user(pk):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=pk, is_active=True).first()


@database_sync_to_async
def _allowed(user, permission, environment, container_id=None):
    resource = ("container", container_id) if container_id else None
    return has_permission(user, permission, environment, resource)


class LiveConsumer(AsyncWebsocketConsumer):
    """Session, object and permission checks, the heartbeat, and JSON helpers."""

    permission = "containers.view"
    needs_container = True

    async def connect(self):
        self.tasks: list[asyncio.Task] = []
        self.closed = False
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(p.CLOSE_UNAUTHENTICATED, "Sign in again.")
            return
        self.user = user
        if self.needs_container:
            self.container = await _visible_container(user, self.scope["url_route"]["kwargs"]["pk"])
            if self.container is None:
                await self.refuse(p.CLOSE_NOT_FOUND, "No such container.")
                return
            self.environment = self.container.environment
            allowed = await _allowed(user, self.permission, self.environment, self.container.container_id)
        else:
            self.container = None
            self.environment = await current_environment(self.scope)
            if self.environment is None:
                await self.refuse(p.CLOSE_NOT_FOUND, "No environment.")
                return
            allowed = await _allowed(user, self.permission, self.environment)
        if not allowed:
            await self.denied()
            await self.refuse(p.CLOSE_FORBIDDEN, "You may not do this here.")
            return
        self.driver = driver_for(self.environment)
        self.last_heard = time.monotonic()
        await self.join_access_groups()
        self.spawn(self.heartbeat())
        await self.ready()

    # -------------------------------------------------------- access taken away meanwhile
    async def join_access_groups(self):
        """Hear when someone's access changes (console.access.revocation) to check ours again."""
        self.access_groups = [revocation.group_for(self.user.pk), revocation.EVERYONE]
        for group in self.access_groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def leave_access_groups(self):
        for group in getattr(self, "access_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def access_changed(self, event):
        code = await self.access_lost()
        if code is not None and not self.closed:
            await self.refuse(code, "Your access to this has changed.")

    async def access_lost(self) -> int | None:
        """The close code when the user may no longer use this socket, else None."""
        user = await _active_user(self.user.pk)
        if user is None:
            return p.CLOSE_UNAUTHENTICATED
        self.user = user
        if self.needs_container:
            if await _visible_container(user, self.container.pk) is None:
                return p.CLOSE_NOT_FOUND
            allowed = await _allowed(user, self.permission, self.environment, self.container.container_id)
        else:
            allowed = await _allowed(user, self.permission, self.environment)
        return None if allowed else p.CLOSE_FORBIDDEN

    async def ready(self):
        """The checks passed."""

    async def denied(self):
        """The permission check failed (a hook to audit it)."""

    async def refuse(self, code: int, reason: str = ""):
        if reason and not self.closed:
            await self.send_info(t="refused", code=code, message=reason)
        await self.close_with(code)

    async def close_with(self, code: int):
        if not self.closed:
            self.closed = True
            await self.close(code=code)
        await self.stop_tasks()
        # Release now (a terminal's process, a follower): the client's disconnect may come
        # late, or never from a client that just goes away.
        await self.finish_once()

    def spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self.tasks.append(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task):
        if task in self.tasks:
            self.tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("live socket task failed", exc_info=task.exception())
            asyncio.ensure_future(self.close_with(p.CLOSE_UNAVAILABLE))

    async def stop_tasks(self):
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()

    async def disconnect(self, code):
        self.closed = True
        await self.stop_tasks()
        await self.finish_once()

    async def finish_once(self):
        if not getattr(self, "finished", False):
            self.finished = True
            await self.leave_access_groups()
            await self.finish()

    async def finish(self):
        """The socket is gone or closing (hook, called once)."""

    async def heartbeat(self):
        while True:
            await asyncio.sleep(p.HEARTBEAT_SECONDS)
            if time.monotonic() - self.last_heard > p.HEARTBEAT_TIMEOUT:
                await self.close_with(p.CLOSE_IDLE)
                return
            await self.send_ping()

    async def send_ping(self):
        await self.send_info(t="ping")

    async def send_info(self, **message):
        if not self.closed:
            await self.send(text_data=json.dumps(message, default=str))

    async def receive(self, text_data=None, bytes_data=None):
        if getattr(self, "closed", True) or not hasattr(self, "driver"):
            if not getattr(self, "closed", True):
                await self.close_with(p.CLOSE_BAD_MESSAGE)
            return
        self.last_heard = time.monotonic()
        try:
            await self.on_message(text_data, bytes_data)
        except p.BadMessage as exc:
            log.info("live socket: bad message (%s)", exc)
            await self.close_with(p.CLOSE_BAD_MESSAGE)

    async def on_message(self, text_data, bytes_data):
        message = p.parse_json(text_data, bytes_data)
        if message["t"] != "pong":
            raise p.BadMessage(f"unknown message {message['t']!r}")


# ---------------------------------------------------------------- logs

class LogsConsumer(LiveConsumer):
    """One container's log: the last lines, older ones on demand, then live; search over the
    whole log; an "only matching lines" filter. Lines travel as raw JSON lines in batches
    with a cursor, acknowledged by the client (see docs/websockets.md)."""

    permission = "containers.logs"

    async def ready(self):
        self.stream = None
        self.follower = None
        self.follow_task = None
        self.pattern = None
        self.seq = 0
        self.unacked: collections.deque[tuple[int, int]] = collections.deque()
        self.inflight = 0
        self.acked = asyncio.Event()
        self.options = {}
        try:
            self.stream = await asyncio.to_thread(self.driver.log_stream, self.container.container_id)
        except NotFound:
            await self.refuse(p.CLOSE_NOT_FOUND, "The container is no longer on the engine.")
        except (EngineError, NotImplementedError) as exc:
            await self.refuse(p.CLOSE_UNAVAILABLE, str(exc))

    async def finish(self):
        if getattr(self, "follower", None) is not None:
            self.follower.close()
        await self.drop_filter()

    async def drop_filter(self):
        pattern, self.pattern = getattr(self, "pattern", None), None
        if pattern is not None:
            limits.filters.give_back(self.user.pk)
            await pattern.close()

    async def on_message(self, text_data, bytes_data):
        message = p.parse_json(text_data, bytes_data)
        kind = message["t"]
        handler = {"open": self.on_open, "ack": self.on_ack, "more": self.on_more, "search": self.on_search,
                   "around": self.on_around, "filter": self.on_filter, "pong": self.on_pong}.get(kind)
        if handler is None:
            raise p.BadMessage(f"unknown message {kind!r}")
        await handler(message)

    async def on_pong(self, message):
        pass

    async def on_open(self, message):
        tail = p.integer(message, "tail", 0, p.MAX_TAIL, default=p.DEFAULT_TAIL, allow_none=True)
        since = p.text(message, "since", limit=64) or None
        stdout = p.flag(message, "stdout", True)
        stderr = p.flag(message, "stderr", True)
        after = p.cursor_of(message, "after", required=False)
        if since:
            try:
                from engine.logs.reader import parse_when

                parse_when(since)
            except InvalidArgument as exc:
                await self.send_info(t="error", message=str(exc))
                return
        self.options = {"stdout": stdout, "stderr": stderr}
        self.stop_following()
        await self.drop_filter()
        stream = self.stream
        if after is not None:  # a reconnect: go on exactly after the last line the client has
            follower = await asyncio.to_thread(stream.follower, after, stdout=stdout, stderr=stderr)
            if follower.gap:
                await self.send_info(t="gap", message="Some lines were rotated away while you were disconnected.")
        elif tail is None:  # everything (from since): streamed by the follower, acknowledged batches
            start = await asyncio.to_thread(stream.start_cursor, since)
            follower = await asyncio.to_thread(stream.follower, start, stdout=stdout, stderr=stderr)
            await self.send_info(t="begin", more=False)
        else:
            end = await asyncio.to_thread(stream.end_cursor)
            batches, more = await asyncio.to_thread(stream.tail, tail, since=since, stdout=stdout, stderr=stderr,
                                                    before=end)
            await self.send_info(t="begin", more=more)
            for batch in batches:
                await self.send_batch(batch, "tail")
            follower = await asyncio.to_thread(stream.follower, end, stdout=stdout, stderr=stderr)
        self.follower = follower
        await self.send_info(t="live")  # what follows is new lines
        self.follow_task = self.spawn(self.follow())

    def stop_following(self):
        if self.follow_task is not None:
            self.follow_task.cancel()
            self.follow_task = None
        if self.follower is not None:
            self.follower.close()
            self.follower = None

    async def follow(self):
        follower = self.follower
        state = None
        next_check = 0.0
        while True:
            while self.inflight > p.INFLIGHT_HIGH:  # the client is behind: the file keeps the lines
                self.acked.clear()
                await self.acked.wait()
            batch = follower.poll()
            if batch is not None:
                if follower.gap:
                    follower.gap = False
                    await self.send_info(t="gap", message="Some lines were rotated away before they were read.")
                await self.send_batch(batch, "live")
                await asyncio.sleep(0)
                continue
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 1.0
                try:
                    current = await asyncio.to_thread(self.driver.container_state, self.container.container_id)
                except NotFound:
                    await self.send_info(t="state", status="removed", running=False)
                    await self.close_with(p.CLOSE_NOT_FOUND)
                    return
                if current != state:
                    state = current
                    await self.send_info(t="state", **current)
            await asyncio.sleep(0.02)

    async def send_batch(self, batch, mode: str, **extra):
        data = batch.data
        count = batch.count
        if self.pattern is not None and mode == "live":
            try:
                data, count = await self.pattern.keep(data)
            except TimeoutError as exc:
                await self.drop_filter()  # gives its slot back (the child is gone already)
                await self.send_info(t="filter", active=False, error=str(exc))
                return
            if not count:
                return
        self.seq += 1
        header = {"t": "lines", "seq": self.seq, "mode": mode, "ino": batch.inode, "start": batch.start,
                  "end": batch.end, "n": count, **extra}
        payload = json.dumps(header) + "\n" + data.decode("utf-8", "replace")
        self.unacked.append((self.seq, len(payload)))
        self.inflight += len(payload)
        if not self.closed:
            await self.send(text_data=payload)

    async def on_ack(self, message):
        seq = p.integer(message, "seq", 0, 2 ** 62)
        while self.unacked and self.unacked[0][0] <= seq:
            self.inflight -= self.unacked.popleft()[1]
        self.acked.set()

    async def on_more(self, message):
        before = p.cursor_of(message, "before")
        count = p.integer(message, "n", 1, p.MAX_MORE, default=1000)
        batches, more = await asyncio.to_thread(self.stream.tail, count, before=before, **self.options)
        # newest first, so the client can prepend batch after batch
        for i, batch in enumerate(reversed(batches)):
            await self.send_batch(batch, "older", more=more or i < len(batches) - 1)
        if not batches:
            await self.send_info(t="oldest")

    def _pattern(self, message):
        query = p.text(message, "q", limit=1000)
        regex = p.flag(message, "regex", False)
        case = p.flag(message, "case", False)
        from engine.logs.stream import compile_search

        return query, compile_search(query, regex=regex, case=case)

    async def on_search(self, message):
        search_id = p.integer(message, "id", 0, 2 ** 31)
        try:
            _, pattern = self._pattern(message)
        except ValueError as exc:  # re.error is one
            await self.send_info(t="search", id=search_id, error=str(exc))
            return
        try:
            count, cursors, _lines, partial = await limits.searches.run(
                self.user.pk, self.run_search, message, p.SEARCH_LIMIT, False)
        except limits.TooMany as exc:
            await self.send_info(t="search", id=search_id, error=str(exc), busy=True)
            return
        await self.send_info(t="search", id=search_id, count=count, matches=[list(c) for c in cursors],
                             truncated=count > len(cursors), partial=partial)

    def run_search(self, message, limit: int, want_lines: bool):
        """In a child process with a deadline (engine.logsearch): a regex that backtracks
        forever costs a killed process, not one of daphne's threads."""
        from engine.logs.search import search

        return search(self.stream.path, p.text(message, "q", limit=1000), regex=p.flag(message, "regex", False),
                      case=p.flag(message, "case", False), limit=limit, want_lines=want_lines,
                      timeout=p.SEARCH_SECONDS, **self.options)

    async def on_around(self, message):
        at = p.cursor_of(message, "at")
        count = p.integer(message, "n", 1, p.MAX_AROUND, default=200)
        batch, focus = await asyncio.to_thread(self.stream.around, at, count // 2, count // 2)
        if batch is None:
            await self.send_info(t="gone", at=list(at))
            return
        await self.send_batch(batch, "around", focus=focus)

    async def on_filter(self, message):
        query = p.text(message, "q", limit=1000)
        await self.drop_filter()
        if not query:
            await self.send_info(t="filter", active=False)
            return
        try:
            from engine.logs.search import LiveFilter

            pattern = LiveFilter(query, p.flag(message, "regex", False), p.flag(message, "case", False))
        except ValueError as exc:
            await self.send_info(t="filter", error=str(exc))
            return
        try:
            limits.filters.take(self.user.pk)  # held while the filter is on (drop_filter gives it back)
            try:
                count, _cursors, lines, partial = await limits.searches.run(
                    self.user.pk, self.run_search, message, p.FILTER_LINES, True)
            except BaseException:
                limits.filters.give_back(self.user.pk)
                raise
        except limits.TooMany as exc:
            await self.send_info(t="filter", active=False, error=str(exc), busy=True)
            return
        self.pattern = pattern
        await self.send_info(t="filter", active=True, count=count, partial=partial)
        data = b"".join(lines)
        from engine.logs.stream import Batch

        await self.send_batch(Batch(0, 0, 0, data, len(lines)), "filter")


# ---------------------------------------------------------------- terminal

class TerminalConsumer(LiveConsumer):
    """xterm.js <-> a TTY process in the container, binary frames both ways.

    Client frames: b"0" + input, b"1" + {"cols", "rows"}, b"2" + bytes consumed (ASCII
    decimal). Server frames: b"0" + output, b"1" + JSON info. Output not yet acknowledged
    above ``TERMINAL_HIGH`` bytes stops reading the pty until it is back under ``TERMINAL_LOW``.
    """

    permission = "containers.terminal"

    async def denied(self, reason: str = "permission"):
        await _audit(user=self.user, action="container.terminal", environment=self.environment,
                     target_type="container", target_id=self.container.container_id,
                     target_name=self.container.name, outcome="denied", request=_audit_info(self.scope),
                     details={"reason": reason})

    async def ready(self):
        self.session = None
        self.recorder = None
        self.audit_info = _audit_info(self.scope)
        if not self.token_valid():
            await self.denied("no valid page token")
            await self.refuse(p.CLOSE_FORBIDDEN, "This terminal needs the console's page: reload it.")
            return
        self.inflight = 0
        self.resumed = asyncio.Event()
        self.pending_input = bytearray()
        query = _query(self.scope)
        try:
            cols, rows = query.get("cols", "80"), query.get("rows", "24")
            if not (cols.isascii() and cols.isdigit() and rows.isascii() and rows.isdigit()):
                raise ValueError("the size must be whole numbers")
            from engine.containers.terminal import check_size

            cols, rows = check_size(int(cols), int(rows))
            command_text = query.get("cmd", "").strip()
            if len(command_text) > 1000:
                raise ValueError("command too long")
            command = shlex.split(command_text) if command_text else None
            run_as = query.get("user", "").strip()[:100] or None
        except (ValueError, InvalidArgument):
            await self.close_with(p.CLOSE_BAD_MESSAGE)
            return
        opening = asyncio.ensure_future(asyncio.to_thread(
            self.driver.open_terminal, self.container.container_id, command, user=run_as, cols=cols, rows=rows))
        try:
            # Shielded: a socket closed while the process starts must not leave it running.
            self.session = await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_abandoned_session)
            raise
        except NotFound as exc:
            await self.refuse(p.CLOSE_NOT_FOUND, str(exc))
            return
        except EngineError as exc:
            code = p.CLOSE_CONFLICT if "not running" in str(exc) or "paused" in str(exc) else p.CLOSE_UNAVAILABLE
            await self.send_terminal_info(t="error", message=str(exc))
            await self.close_with(code)
            return
        self.started = dt.datetime.now(dt.UTC)
        session = self.session
        try:
            from console.audit import TerminalRecorder

            # It reads the recording settings (a query): not on the event loop.
            self.recorder = await database_sync_to_async(TerminalRecorder)(
                cols, rows, command=" ".join(session.command), title=self.container.name)
        except ImportError:
            self.recorder = None
        await _audit(user=self.user, action="container.terminal.open", environment=self.environment,
                     target_type="container", target_id=self.container.container_id,
                     target_name=self.container.name,
                     details={"command": " ".join(session.command), "user": session.user,
                              "exec_id": session.exec_id}, request=self.audit_info)
        await self.send_terminal_info(t="started", command=session.command, user=session.user,
                                      exec_id=session.exec_id)
        self.spawn(self.pump())

    def token_valid(self) -> bool:
        """The page's token (console.core.sockettokens): the session cookie alone is not enough."""
        session = self.scope.get("session")
        return sockettokens.valid(_query(self.scope).get("token"), self.user,
                                  getattr(session, "session_key", None),
                                  sockettokens.purpose_for("terminal", self.container.pk))

    async def send_ping(self):
        await self.send_terminal_info(t="ping")

    async def send_terminal_info(self, **message):
        if not self.closed:
            await self.send(bytes_data=p.T_INFO + json.dumps(message).encode())

    async def send_info(self, **message):
        await self.send_terminal_info(**message)

    async def readable(self, fd: int):
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def ready():
            if not future.done():
                future.set_result(None)

        loop.add_reader(fd, ready)
        try:
            await future
        finally:
            loop.remove_reader(fd)

    async def pump(self):
        session = self.session
        while True:
            while self.inflight > p.TERMINAL_HIGH:  # flow control: leave the output in the pty
                self.resumed.clear()
                await self.resumed.wait()
            try:
                data = session.read(65536)
            except BlockingIOError:
                await self.readable(session.fd)
                continue
            if not data:
                break
            self.inflight += len(data)
            if self.recorder is not None:
                self.recorder.output(data)
            await self.send(bytes_data=p.T_OUTPUT + data)
        code = await asyncio.to_thread(session.wait, 5)
        await self.send_terminal_info(t="exit", code=code)
        try:
            state = await asyncio.to_thread(self.driver.container_state, self.container.container_id)
        except EngineError:
            state = {"status": "removed", "running": False}
        if not state.get("running"):
            await self.send_terminal_info(t="container", **state)
        await self.end_session()
        await self.close_with(1000)

    async def on_message(self, text_data, bytes_data):
        if getattr(self, "session", None) is None and bytes_data:
            return  # the process has ended: late input goes nowhere
        if bytes_data is None or not bytes_data:
            raise p.BadMessage("the terminal takes binary frames")
        opcode, payload = bytes_data[:1], bytes_data[1:]
        if opcode == p.T_INPUT:
            await self.write_input(payload)
        elif opcode == p.T_RESIZE:
            from engine.containers.terminal import MAX_COLUMNS, MAX_ROWS

            size = p.decode(payload)  # whole numbers only: not 80.5, "80" nor true
            cols, rows = p.integer(size, "cols", 1, MAX_COLUMNS), p.integer(size, "rows", 1, MAX_ROWS)
            self.session.resize(cols, rows)
            if self.recorder is not None:
                self.recorder.resize(cols, rows)
        elif opcode == p.T_ACK:
            if not payload.isdigit() or len(payload) > 13:  # ASCII digits only: not "-1", " 1", "1e3"
                raise p.BadMessage("bad ack")
            consumed = int(payload)
            self.inflight = max(0, self.inflight - consumed)
            if self.inflight <= p.TERMINAL_LOW:
                self.resumed.set()
        elif opcode == b"9":  # pong
            pass
        else:
            raise p.BadMessage("unknown opcode")

    async def write_input(self, data: bytes):
        if len(self.pending_input) + len(data) > p.MAX_PENDING_INPUT:
            await self.send_terminal_info(t="notice", message="Input dropped: the process is not reading it.")
            return
        self.pending_input += data
        while self.pending_input and self.session.fd >= 0:
            taken = self.session.write(bytes(self.pending_input[:65536]))
            if self.recorder is not None and taken:
                self.recorder.input(bytes(self.pending_input[:taken]))
            del self.pending_input[:taken]
            if self.pending_input:
                await asyncio.sleep(0.01)  # the pty's input buffer is full: let the process read

    async def disconnect(self, code):
        # Hang up first, synchronously: whatever is cancelled after this (a slow task, the
        # server giving up on the consumer), the process has had its SIGHUP and ends.
        session = getattr(self, "session", None)
        if session is not None and session.fd >= 0:
            asyncio.get_running_loop().remove_reader(session.fd)  # before the fd number is freed
            session.hangup()
        await super().disconnect(code)

    async def finish(self):
        await self.end_session()

    async def end_session(self):
        """End the process (if it runs) and audit the session, once."""
        session = getattr(self, "session", None)
        if session is None:
            return
        self.session = None
        # Hang up at once, on the loop: even if this coroutine is cancelled below, the process
        # has had its SIGHUP; the wait (and the kill of a process that ignores it) is shielded.
        if session.fd >= 0:
            asyncio.get_running_loop().remove_reader(session.fd)
        session.hangup()
        code = await asyncio.shield(asyncio.to_thread(session.close))
        ended = dt.datetime.now(dt.UTC)
        try:
            from console.audit import record_terminal_session
        except ImportError:
            record_terminal_session = None
        if record_terminal_session is not None:
            await database_sync_to_async(record_terminal_session)(
                user=self.user, environment=self.environment, container_id=self.container.container_id,
                container_name=self.container.name, command=session.command, run_as=session.user,
                started_at=self.started, ended_at=ended, recording=self.recorder, exit_code=code,
                request=self.audit_info)
        else:
            await _audit(user=self.user, action="container.terminal.close", environment=self.environment,
                         target_type="container", target_id=self.container.container_id,
                         target_name=self.container.name,
                         details={"command": " ".join(session.command), "exit_code": code,
                                  "seconds": round((ended - self.started).total_seconds(), 3)},
                         request=self.audit_info)


@database_sync_to_async
def _audit(**fields):
    from console import audit

    return audit.record(**fields)


def _audit_info(scope):
    """The connection's source IP and user agent for the audit log (one id per connection)."""
    try:
        from console.audit.context import info_from_scope
    except ImportError:
        return None
    return info_from_scope(scope)


def _query(scope) -> dict[str, str]:
    from urllib.parse import parse_qs

    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[-1] for k, v in parse_qs(raw).items()}


# ---------------------------------------------------------------- stats

class StatsConsumer(LiveConsumer):
    """CPU %, memory, network and block IO of one container, once a second."""

    interval = 1.0

    async def ready(self):
        self.spawn(self.sample_loop())

    async def sample_loop(self):
        previous = None
        state = None
        ref = self.container.container_id
        while True:
            try:
                current = await asyncio.to_thread(self.driver.stats_sample, ref)
            except NotFound:
                await self.send_info(t="state", status="removed", running=False)
                await self.close_with(p.CLOSE_NOT_FOUND)
                return
            except (EngineError, OSError):
                previous = None
                try:
                    now = await asyncio.to_thread(self.driver.container_state, ref)
                except NotFound:
                    await self.send_info(t="state", status="removed", running=False)
                    await self.close_with(p.CLOSE_NOT_FOUND)
                    return
                if now != state:
                    state = now
                    await self.send_info(t="state", **now)
                await asyncio.sleep(2 * self.interval)
                continue
            if state is None or not state.get("running"):
                state = {"status": "running", "running": True, "exit_code": 0}
                await self.send_info(t="state", **state)
            if previous is not None:
                await self.send_info(t="stats", **self.driver.stats_summary(current, previous))
            previous = current
            await asyncio.sleep(self.interval)


# ---------------------------------------------------------------- containers list and events

@database_sync_to_async
def _visible_ids(user, environment) -> dict[str, int]:
    """engine id -> row pk of the containers this user sees."""
    rows = restrict(Container.objects.filter(environment=environment), user, "containers.view", environment)
    return dict(rows.values_list("container_id", "pk"))


class ContainersListConsumer(LiveConsumer):
    """The containers list: live CPU and memory of the rows on the page, and rows re-rendered
    when their container changes state, whoever changed it (engine events)."""

    needs_container = False

    async def ready(self):
        self.watched: set[int] = set()
        self.visible = await _visible_ids(self.user, self.environment)
        self.pending: set[str] = set()
        self.refresh_task = None
        self.group = events_group(self.environment)
        await self.channel_layer.group_add(self.group, self.channel_name)
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
            rows = {}
            for pk, cid in by_pk.items():
                try:
                    current = await asyncio.to_thread(self.driver.stats_sample, cid)
                except (EngineError, OSError):
                    previous.pop(cid, None)
                    continue
                if cid in previous:
                    summary = self.driver.stats_summary(current, previous[cid])
                    rows[pk] = {"cpu": summary["cpu_percent"], "mem": summary["memory_usage"],
                                "mem_limit": summary["memory_limit"]}
                previous[cid] = current
            if rows:
                await self.send_info(t="stats", rows=rows)

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
        self.visible = await _visible_ids(self.user, self.environment)
        rows = {}
        for cid in changed:
            pk = self.visible.get(cid)
            if pk is not None and pk in self.watched:
                rows[pk] = await _render_row(pk)
        removed = [before[cid] for cid in changed if cid in before and cid not in self.visible]
        added = any(cid in self.visible and cid not in before for cid in changed)
        await self.send_info(t="rows", rows=rows, removed=removed, added=added)

    async def finish(self):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)


@database_sync_to_async
def _render_row(pk):
    container = Container.objects.filter(pk=pk).first()
    if container is None:
        return ""
    return render_to_string("containers/_row.html", {"c": container})


class EventsConsumer(LiveConsumer):
    """The engine's events for what the user sees: the last hour first, then live ones as the
    follower process publishes them."""

    needs_container = False

    async def ready(self):
        self.visible = await _visible_ids(self.user, self.environment)
        self.images = await _allowed(self.user, "images.view", self.environment)
        self.refreshed = time.monotonic()
        self.group = events_group(self.environment)
        await self.channel_layer.group_add(self.group, self.channel_name)
        since = time.time() - BACKLOG_SECONDS
        backlog = await asyncio.to_thread(
            lambda: list(self.driver.follow_events(since=since, stop=lambda: True)))
        for event in backlog[-BACKLOG_EVENTS:]:
            await self.engine_event({"event": event})

    async def engine_event(self, message):
        event = message.get("event") or {}
        if await self.may_see(event):
            await self.send_info(t="event", event=event)

    async def finish(self):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def may_see(self, event) -> bool:
        kind = event.get("Type")
        if kind == "image":
            return self.images
        if kind != "container":
            return bool(getattr(self.user, "is_superuser", False))
        cid = event.get("Actor", {}).get("ID", "")
        if cid not in self.visible and time.monotonic() - self.refreshed > 2:
            self.visible = await _visible_ids(self.user, self.environment)
            self.refreshed = time.monotonic()
        # a removed container has left the mirror: only administrators still see its events
        return cid in self.visible or bool(getattr(self.user, "is_superuser", False))


__all__ = ["LogsConsumer", "TerminalConsumer", "StatsConsumer", "ContainersListConsumer", "EventsConsumer"]


def _close_abandoned_session(opening: asyncio.Future) -> None:
    """A terminal opened for a socket that went away meanwhile: hang it up and reap it."""
    if opening.cancelled() or opening.exception() is not None:
        return
    session = opening.result()
    session.hangup()
    threading.Thread(target=session.close, name="close-abandoned-terminal", daemon=True).start()
