"""One container's log over a websocket: tail, older lines, live, search, filter."""

from __future__ import annotations

import asyncio
import collections
import json
import time

from console.live import limits
from console.live import protocol as p
from console.live.consumers.base import ContainerConsumer
from engine.errors import EngineError, InvalidArgument, NotFound


class LogsConsumer(ContainerConsumer):
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

