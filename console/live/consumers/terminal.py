"""A terminal in a container over a websocket: xterm.js <-> a TTY process."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shlex
import threading

from channels.db import database_sync_to_async

from console.core import sockettokens
from console.live import protocol as p
from console.live.consumers.base import ContainerConsumer, query_of
from engine.errors import EngineError, InvalidArgument, NotFound


class TerminalConsumer(ContainerConsumer):
    """xterm.js <-> a TTY process in the container, binary frames both ways.

    Client frames: b"0" + input, b"1" + {"cols", "rows"}, b"2" + bytes consumed (ASCII
    decimal). Server frames: b"0" + output, b"1" + JSON info. Output not yet acknowledged
    above ``TERMINAL_HIGH`` bytes stops reading the pty until it is back under ``TERMINAL_LOW``.
    """

    permission = "containers.terminal"
    token_refusal = "This terminal needs the console's page: reload it."

    async def denied(self, reason: str = "permission"):
        await _audit(user=self.user, action="container.terminal", environment=self.environment,
                     target_type="container", target_id=self.container.container_id,
                     target_name=self.container.name, outcome="denied", request=_audit_info(self.scope),
                     details={"reason": reason})

    async def ready(self):
        self.session = None
        self.recorder = None
        self.audit_info = _audit_info(self.scope)
        self.inflight = 0
        self.resumed = asyncio.Event()
        self.pending_input = bytearray()
        query = query_of(self.scope)
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

    def token_purpose(self) -> str:
        """The page's token (console.core.sockettokens): the session cookie alone is not enough."""
        return sockettokens.purpose_for("terminal", self.container.pk)

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




def _close_abandoned_session(opening: asyncio.Future) -> None:
    """A terminal opened for a socket that went away meanwhile: hang it up and reap it."""
    if opening.cancelled() or opening.exception() is not None:
        return
    session = opening.result()
    session.hangup()
    threading.Thread(target=session.close, name="close-abandoned-terminal", daemon=True).start()

