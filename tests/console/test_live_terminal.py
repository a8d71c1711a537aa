"""The terminal websocket: who may open one, a shell with `echo`, UTF-8 split across
frames, resize (and refused sizes), flow control with `yes`, the exit code, closing the
socket ends the process, several at once, audit. Real containers (runc)."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from console.asgi import application
from console.core.models import Environment
from console.inventory.models import Container
from console.inventory.reconcile import reconcile
from console.live import protocol as p
from tests.support.access import grant
from tests.support.sockets import closed_with, info, terminal_token
from tests.support.worker import async_wait_until

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")


def cookie(client):
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def terminal(row, client, query="cols=80&rows=24"):
    token = await terminal_token(client, row.pk)
    ws = WebsocketCommunicator(application, f"/ws/containers/{row.pk}/terminal/?{query}&token={token}",
                               headers=[ORIGIN, HOST, cookie(client)])
    connected, _ = await ws.connect(timeout=10)
    assert connected
    return ws


async def output_until(ws, needle: bytes, timeout=30):
    """The terminal's output until ``needle``, line ends as a terminal shows them: until runc
    has put our pty in raw mode (late on a loaded machine), both ptys turn "\\n" into "\\r\\n"."""
    deadline = time.monotonic() + timeout
    output = b""
    while needle not in (output := output.replace(b"\r\r\n", b"\r\n")):
        try:
            out = await ws.receive_output(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"no {needle!r} within {timeout}s; the output: {output[-2000:]!r}") from None
        assert out["type"] != "websocket.close", (out, output)
        if out["bytes"][:1] == p.T_OUTPUT:
            output += out["bytes"][1:]
    return output


async def size_seen_by_the_shell(ws, size: bytes, timeout=30) -> bytes:
    """``stty size`` until it prints ``size``: runc passes a resize on to the container's pty
    when its SIGWINCH handler runs, which on a loaded machine can be after the next command."""
    deadline = time.monotonic() + timeout
    while True:
        # the marker as printed ("size-2") is not the marker as typed (which the pty echoes)
        await ws.send_to(bytes_data=p.T_INPUT + b"stty size; echo size-$((1+1))\r")
        output = await output_until(ws, b"size-2\r\n", timeout=max(1, deadline - time.monotonic()))
        if size in output.split(b"size-$((1+1))", 1)[-1] or time.monotonic() > deadline:
            return output


async def test_echo_resize_utf8_exit_code_and_audit(row, admin_client):
    ws = await terminal(row, admin_client)
    started, _ = await info(ws, "started")
    assert started["command"] == ["/bin/sh"] and started["user"] == "root"
    await ws.send_to(bytes_data=p.T_INPUT + b"echo hi-$((1))\r")  # printed "hi-1", echoed as typed
    assert b"hi-1\r\n" in await output_until(ws, b"hi-1\r\n")
    await ws.send_to(bytes_data=p.T_RESIZE + json.dumps({"cols": 123, "rows": 45}).encode())
    assert b"45 123" in await size_seen_by_the_shell(ws, b"45 123")
    # "é" split across two frames arrives whole
    await ws.send_to(bytes_data=p.T_INPUT + b"echo caf\xc3")
    await ws.send_to(bytes_data=p.T_INPUT + b"\xa9 ok\r")
    await output_until(ws, "café ok\r\n".encode())
    await ws.send_to(bytes_data=p.T_INPUT + b"exit 7\r")
    message, _ = await info(ws, "exit")
    assert message["code"] == 7
    assert (await closed_with(ws)) == 1000
    from console.audit.models import AuditEvent

    @database_sync_to_async
    def audited():  # the close is recorded as the session ends, after the socket closed
        actions = set(AuditEvent.objects.filter(target_id=row.container_id).values_list("action", flat=True))
        return actions if {"container.terminal", "container.terminal.close"} & actions else None

    actions = await async_wait_until(audited, what="the terminal's audit record")
    assert "container.terminal.open" in actions


async def test_closing_the_socket_ends_the_process_and_several_at_once(row, admin_client):
    first = await terminal(row, admin_client)
    second = await terminal(row, admin_client, "cmd=sh&rows=10&cols=40")
    await info(first, "started")
    await info(second, "started")
    # what the shells print ("one-1"), not what the pty echoes of what was typed ("one-$((1))")
    await first.send_to(bytes_data=p.T_INPUT + b"echo $$ > /tmp/one.pid; echo one-$((1))\r")
    await second.send_to(bytes_data=p.T_INPUT + b"echo two-$((2))\r")
    await output_until(first, b"one-1\r\n")
    await output_until(second, b"two-2\r\n")
    await first.disconnect()
    # the first shell is gone; the second one still answers
    await second.send_to(bytes_data=p.T_INPUT + b"i=0; while [ $i -lt 60 ]; do kill -0 $(cat /tmp/one.pid) 2>/dev/null || "
                       b"{ echo gone; break; }; sleep 0.3; i=$((i+1)); done\r")
    await output_until(second, b"gone\r\n", timeout=25)
    await second.disconnect()


async def test_flow_control_keeps_memory_bounded(row, admin_client):
    ws = await terminal(row, admin_client)
    await info(ws, "started")
    await ws.send_to(bytes_data=p.T_INPUT + b"yes\r")
    received = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # read without acknowledging
        if await ws.receive_nothing(timeout=0.5):
            break
        out = await ws.receive_output(timeout=1)
        received += len(out["bytes"])
    assert time.monotonic() < deadline, "the output did not stop"
    # stopped by the window, not by the 2 s: `yes` waits for us
    assert received < p.TERMINAL_HIGH + 4 * 65536 + 4096, received
    await ws.send_to(bytes_data=p.T_ACK + str(received).encode())
    more = await ws.receive_output(timeout=5)
    assert more["bytes"][:1] == p.T_OUTPUT
    await ws.send_to(bytes_data=p.T_INPUT + b"\x03")
    await ws.disconnect()


@pytest.mark.parametrize("query", ["cols=0&rows=0", "cols=1000000000&rows=24", "cols=x&rows=1", "cols=80.5&rows=24",
                                   "cols=-80&rows=24", "cols=%D9%A8%D9%A0&rows=24"])
async def test_bad_sizes_are_refused(row, admin_client, query):
    ws = await terminal(row, admin_client, query)
    assert await closed_with(ws) == p.CLOSE_BAD_MESSAGE


@pytest.mark.parametrize("frame", [
    {"text_data": "echo hi"}, {"raw": b""}, {"bytes_data": b"7what"},
    {"bytes_data": p.T_RESIZE + b'{"cols": 0, "rows": 0}'},
    {"bytes_data": p.T_RESIZE + b'{"cols": 1000000000, "rows": 24}'},
    {"bytes_data": p.T_RESIZE + b"\xff\xfe garbage"}, {"bytes_data": p.T_ACK + b"-5"},
    # whole numbers in range only: not floats, strings, booleans, nor a nesting bomb
    {"bytes_data": p.T_RESIZE + b'{"cols": 80.5, "rows": 24}'},
    {"bytes_data": p.T_RESIZE + b'{"cols": "80", "rows": "24"}'},
    {"bytes_data": p.T_RESIZE + b'{"cols": true, "rows": 24}'},
    {"bytes_data": p.T_RESIZE + b'{"cols": 80}'}, {"bytes_data": p.T_RESIZE + b"[80, 24]"},
    {"bytes_data": p.T_RESIZE + b"[" * 30000 + b"]" * 30000},
    {"bytes_data": p.T_ACK + b"1e3"}, {"bytes_data": p.T_ACK + b" 12"},
])
async def test_bad_frames_close_with_4400_and_end_the_shell(row, admin_client, frame):
    ws = await terminal(row, admin_client)
    await info(ws, "started")
    if "raw" in frame:  # an empty binary frame (the test client refuses to send one)
        await ws.send_input({"type": "websocket.receive", "bytes": frame["raw"]})
    else:
        await ws.send_to(**frame)
    assert await closed_with(ws) == p.CLOSE_BAD_MESSAGE
    # without waiting for the client's disconnect
    assert await asyncio.to_thread(terminal_runcs_left, 5) == []


async def test_who_may_open_a_terminal(row, admin_client, client, django_user_model):
    ws = WebsocketCommunicator(application, f"/ws/containers/{row.pk}/terminal/", headers=[ORIGIN, HOST])
    await ws.connect(timeout=10)
    assert await closed_with(ws) == p.CLOSE_UNAUTHENTICATED
    ws = WebsocketCommunicator(application, f"/ws/containers/{row.pk}/terminal/",
                               headers=[(b"origin", b"http://evil.example"), HOST, cookie(admin_client)])
    assert (await ws.connect(timeout=10))[0] is False
    environment = await database_sync_to_async(Environment.objects.get)(name="local")
    helper = await database_sync_to_async(django_user_model.objects.create_user)("helper", password="x" * 12)
    await database_sync_to_async(grant)(helper, "helpdesk", environment)  # logs, no terminal
    await database_sync_to_async(client.force_login)(helper)
    ws = await terminal(row, client)
    assert await closed_with(ws) == p.CLOSE_FORBIDDEN
    from console.audit.models import AuditEvent

    assert await database_sync_to_async(AuditEvent.objects.filter(
        action="container.terminal", outcome="denied", actor_name="helper").exists)()
    ws = WebsocketCommunicator(application, "/ws/containers/987654/terminal/", headers=[ORIGIN, HOST, cookie(admin_client)])
    await ws.connect(timeout=10)
    assert await closed_with(ws) == p.CLOSE_NOT_FOUND


async def test_a_stopped_container_is_refused_with_4409(engine, admin_client):
    container = await asyncio.to_thread(engine.create, "test/busybox:latest", ["true"], name="live-stopped")
    try:
        environment = await database_sync_to_async(Environment.objects.get)(name="local")
        await database_sync_to_async(reconcile)(environment, "containers")
        row = await database_sync_to_async(Container.objects.get)(container_id=container.id)
        ws = await terminal(row, admin_client)
        message, _ = await info(ws, "error")
        assert "not running" in message["message"]
        assert await closed_with(ws) == p.CLOSE_CONFLICT
    finally:
        await asyncio.to_thread(engine.remove, container.id, force=True)


async def test_taking_access_away_closes_an_open_terminal_and_ends_its_shell(row, admin, client, django_user_model):
    from console.access.models import Assignment
    from console.accounts import services

    environment = await database_sync_to_async(Environment.objects.get)(name="local")
    operator = await database_sync_to_async(django_user_model.objects.create_user)("op", password="x" * 12)
    await database_sync_to_async(grant)(operator, "operator", environment)
    await database_sync_to_async(client.force_login)(operator)
    ws = await terminal(row, client)
    await info(ws, "started")
    await ws.send_to(bytes_data=p.T_INPUT + b"echo still-here\r")
    await output_until(ws, b"still-here\r\n")
    assignment = await database_sync_to_async(Assignment.objects.get)(user=operator)
    await database_sync_to_async(services.unassign)(admin, assignment)
    refused, _ = await info(ws, "refused")
    assert refused["code"] == p.CLOSE_NOT_FOUND  # no role left: the container is out of sight
    assert await closed_with(ws) == p.CLOSE_NOT_FOUND
    assert await asyncio.to_thread(terminal_runcs_left, 5) == []


def test_no_runc_exec_left_behind():
    """Of this test session's engine (other sessions may run terminals meanwhile). A closed
    terminal's runc may take a moment to exit on a loaded machine; one still there after
    10 seconds was left behind."""
    leftovers = terminal_runcs_left(10)
    assert not leftovers, [open(f"/proc/{pid}/cmdline", "rb").read() for pid in leftovers]


def terminal_runcs_left(wait: float) -> list[str]:
    deadline = time.monotonic() + wait
    while True:
        leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit() and _is_terminal_runc(pid)]
        if not leftovers or time.monotonic() > deadline:
            return leftovers
        time.sleep(0.2)


def _is_terminal_runc(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    from django.conf import settings

    root = str(settings.ENGINE_RUN_ROOT).encode()
    return b"exec" in argv and b"-t" in argv and any(b"runc" in a for a in argv[:1]) and \
        any(a.startswith(root) for a in argv)
