"""The logs websocket: who may connect, tail then live, resume after a reconnect without
losing or repeating a line, older lines, search over the whole log, the filter, bad input,
and the download. Real containers on the real engine (runc)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from console.asgi import application
from console.core.models import Environment
from console.inventory.models import Container
from console.inventory.reconcile import reconcile
from console.live import protocol as p
from tests.support.access import grant
from tests.support.sockets import closed_with
from tests.support.worker import wait_until

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")


def cookie(client):
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def run_container(engine, name, script):
    container, _ = engine.run("test/busybox:latest", ["sh", "-c", script], name=name)
    environment = Environment.objects.get(name="local")
    reconcile(environment, "containers")
    return Container.objects.get(environment=environment, container_id=container.id)


async def open_socket(path, *headers):
    ws = WebsocketCommunicator(application, path, headers=[HOST, *headers])
    connected, _ = await ws.connect(timeout=10)
    return ws, connected


async def read_until(ws, predicate, timeout=15):
    """Messages (header, lines) until predicate(header, lines) is true; acks line batches."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = await ws.receive_from(timeout=deadline - time.monotonic())
        head, _, body = data.partition("\n")
        header = json.loads(head)
        lines = [json.loads(x)["log"].rstrip("\n") for x in body.split("\n") if x]
        if header["t"] == "lines":
            await ws.send_json_to({"t": "ack", "seq": header["seq"]})
        got.append((header, lines))
        if predicate(header, lines):
            return got
    raise AssertionError(f"timed out; got {got[-5:]}")


def lines_of(messages, modes=("tail", "live")):
    return [line for h, lines in messages if h["t"] == "lines" and h["mode"] in modes for line in lines]


def log_text(engine, container_id) -> str:
    """The container's log file as the engine wrote it (JSON lines); empty until its monitor
    has made it."""
    path = Path(engine.get(container_id).config["LogPath"])
    return path.read_text() if path.exists() else ""


@pytest.fixture(scope="module")
def counter_container(engine):
    container, _ = engine.run("test/busybox:latest", ["sh", "-c",
                              "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; echo to stderr >&2; "
                              "while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"], name="live-counter")
    wait_until(lambda: "tick" in log_text(engine, container.id), what="the first tick in the log")
    yield container
    engine.remove(container.id, force=True)


@pytest.fixture
def counter(counter_container):
    environment = Environment.objects.get(name="local")
    reconcile(environment, "containers")
    return Container.objects.get(environment=environment, container_id=counter_container.id)


async def test_signed_out_wrong_origin_no_permission_and_not_visible(counter, admin_client, client,
                                                                     django_user_model):
    path = f"/ws/containers/{counter.pk}/logs/"
    ws, _ = await open_socket(path, ORIGIN)
    assert await closed_with(ws) == p.CLOSE_UNAUTHENTICATED
    ws, connected = await open_socket(path, (b"origin", b"http://evil.example"), cookie(admin_client))
    assert connected is False
    ws, _ = await open_socket("/ws/containers/999999/logs/", ORIGIN, cookie(admin_client))
    assert await closed_with(ws) == p.CLOSE_NOT_FOUND

    # helpdesk reads logs; read-only (owned scope) does not see a container nobody owns: 404
    environment = await database_sync_to_async(Environment.objects.get)(name="local")
    helper = await database_sync_to_async(django_user_model.objects.create_user)("helper", password="x" * 12)
    await database_sync_to_async(grant)(helper, "helpdesk", environment)
    await database_sync_to_async(client.force_login)(helper)
    ws, _ = await open_socket(path, ORIGIN, cookie(client))
    await ws.send_json_to({"t": "open", "tail": 1})
    await read_until(ws, lambda h, lines: h["t"] == "live")
    await ws.disconnect()
    reader = await database_sync_to_async(django_user_model.objects.create_user)("reader", password="x" * 12)
    await database_sync_to_async(grant)(reader, "read-only", environment)
    await database_sync_to_async(client.force_login)(reader)
    ws, _ = await open_socket(path, ORIGIN, cookie(client))
    assert await closed_with(ws) == p.CLOSE_NOT_FOUND
    nobody = await database_sync_to_async(django_user_model.objects.create_user)("nobody", password="x" * 12)
    await database_sync_to_async(client.force_login)(nobody)
    ws, _ = await open_socket(path, ORIGIN, cookie(client))
    assert await closed_with(ws) == p.CLOSE_NOT_FOUND


async def test_tail_live_resume_older_and_state(counter, admin_client, engine):
    path = f"/ws/containers/{counter.pk}/logs/"
    ws, connected = await open_socket(path, ORIGIN, cookie(admin_client))
    assert connected
    await ws.send_json_to({"t": "open", "tail": 100})
    got = await read_until(ws, lambda h, lines: h["t"] == "live")
    tail = lines_of(got)
    assert len(tail) == 100 and tail[-1].startswith("tick")
    begin = next(h for h, _ in got if h["t"] == "begin")
    assert begin["more"] is True
    first = next(h for h, _ in got if h["t"] == "lines")
    got = await read_until(ws, lambda h, lines: h["t"] == "lines" and h["mode"] == "live" and len(lines) > 0)
    live = lines_of(got)
    seen = tail + live
    last = next(h for h, _ in reversed(got) if h["t"] == "lines")
    # older lines, before the first one we have
    await ws.send_json_to({"t": "more", "before": [first["ino"], first["start"]], "n": 50})
    got = await read_until(ws, lambda h, lines: h["t"] == "lines" and h["mode"] == "older")
    older = lines_of(got, ("older",))
    assert len(older) == 50
    await ws.disconnect()

    # lines are written while we are away
    later = f'"tick {max(int(line.split()[1]) for line in seen if line.startswith("tick")) + 5}\\n"'
    await asyncio.to_thread(wait_until, lambda: later in log_text(engine, counter.container_id), what=later)
    ws, _ = await open_socket(path, ORIGIN, cookie(admin_client))
    await ws.send_json_to({"t": "open", "after": [last["ino"], last["end"]]})
    got = await read_until(ws, lambda h, lines: h["t"] == "lines" and len(lines_of([(h, lines)])) >= 5)
    resumed = lines_of(got)
    numbers = [int(line.split()[1]) for line in seen + resumed if line.startswith(("tick", "line"))]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "a line was lost or repeated"
    await ws.disconnect()


async def test_search_whole_log_around_and_filter(counter, admin_client):
    ws, _ = await open_socket(f"/ws/containers/{counter.pk}/logs/", ORIGIN, cookie(admin_client))
    await ws.send_json_to({"t": "open", "tail": 10})
    await read_until(ws, lambda h, lines: h["t"] == "live")
    # "line 12" is far beyond the 10 loaded lines
    await ws.send_json_to({"t": "search", "id": 1, "q": r"^line 1[0-9]$", "regex": True})
    got = await read_until(ws, lambda h, lines: h["t"] == "search")
    result = got[-1][0]
    assert result["count"] == 10 and len(result["matches"]) == 10
    await ws.send_json_to({"t": "around", "at": result["matches"][2], "n": 20})
    got = await read_until(ws, lambda h, lines: h["t"] == "lines" and h["mode"] == "around")
    header, lines = got[-1]
    assert lines[header["focus"]] == "line 12"
    await ws.send_json_to({"t": "search", "id": 2, "q": "(", "regex": True})
    got = await read_until(ws, lambda h, lines: h["t"] == "search")
    assert "error" in got[-1][0]
    await ws.send_json_to({"t": "filter", "q": "STDERR"})
    got = await read_until(ws, lambda h, lines: h["t"] == "lines" and h["mode"] == "filter")
    assert got[-1][1] == ["to stderr"]
    # live lines go through the filter too (in its child process)
    await ws.send_json_to({"t": "filter", "q": r"^tick \d*[05]$", "regex": True})
    await read_until(ws, lambda h, lines: h["t"] == "lines" and h["mode"] == "filter")
    got = await read_until(ws, lambda h, lines: h["t"] == "lines" and h["mode"] == "live")
    live = lines_of(got, ("live",))
    assert live and all(line.startswith("tick") and line[-1] in "05" for line in live), live
    await ws.disconnect()


async def test_a_regex_that_backtracks_forever_is_stopped(engine, admin_client, monkeypatch):
    monkeypatch.setattr(p, "SEARCH_SECONDS", 1.0)
    row = await database_sync_to_async(run_container)(engine, "live-redos", "printf 'a%.0s' $(seq 1 3000); echo '!'; "
                                                      "echo findable; sleep 300")
    try:
        ws, _ = await open_socket(f"/ws/containers/{row.pk}/logs/", ORIGIN, cookie(admin_client))
        await ws.send_json_to({"t": "open", "tail": 10})
        await read_until(ws, lambda h, lines: h["t"] == "live")
        started = time.monotonic()
        await ws.send_json_to({"t": "search", "id": 1, "q": "(a+)+$", "regex": True})
        got = await read_until(ws, lambda h, lines: h["t"] == "search")
        assert got[-1][0]["partial"] is True and time.monotonic() - started < 8
        await ws.send_json_to({"t": "search", "id": 2, "q": "findable"})
        got = await read_until(ws, lambda h, lines: h["t"] == "search")
        assert got[-1][0]["count"] == 1  # and the server is still fine
        await ws.disconnect()
    finally:
        await asyncio.to_thread(engine.remove, row.container_id, force=True)


@pytest.mark.parametrize("message", [
    "not json", json.dumps([1, 2]), json.dumps({"t": "rm -rf /"}), json.dumps({"t": "open", "tail": -1}),
    json.dumps({"t": "open", "tail": 10 ** 9}), json.dumps({"t": "more", "before": "x"}),
    json.dumps({"t": "ack", "seq": "1"}), json.dumps({"t": "search", "id": 1, "q": "x", "regex": "yes"}),
    b"\x00\xff binary garbage",
    "[" * 30000 + "]" * 30000,  # nested past the parser's recursion limit: 4400, not 1011
    json.dumps({"t": "open", "x": [[[[[1]]]]]}),  # deeper than any message of the protocol
    json.dumps({"t": "ack", "seq": 1.5}), json.dumps({"t": "more", "before": [1, 2.5]}),
])
async def test_bad_messages_close_with_4400(counter, admin_client, message):
    ws, _ = await open_socket(f"/ws/containers/{counter.pk}/logs/", ORIGIN, cookie(admin_client))
    if isinstance(message, bytes):
        await ws.send_to(bytes_data=message)
    else:
        await ws.send_to(text_data=message)
    assert await closed_with(ws) == p.CLOSE_BAD_MESSAGE
    # the server is still fine
    ws, _ = await open_socket(f"/ws/containers/{counter.pk}/logs/", ORIGIN, cookie(admin_client))
    await ws.send_json_to({"t": "open", "tail": 1})
    await read_until(ws, lambda h, lines: h["t"] == "live")
    await ws.disconnect()


async def test_stop_is_told_and_start_goes_on(engine, admin_client):
    row = await database_sync_to_async(run_container)(engine, "live-short", "echo first run; sleep 1")
    try:
        ws, _ = await open_socket(f"/ws/containers/{row.pk}/logs/", ORIGIN, cookie(admin_client))
        await ws.send_json_to({"t": "open"})
        await read_until(ws, lambda h, lines: h["t"] == "state" and h.get("running") is False)
        await asyncio.to_thread(engine.start, row.container_id)
        seen = {"line": False, "running": False}

        def both(h, lines):
            seen["line"] |= h["t"] == "lines" and h["mode"] == "live" and "first run" in lines
            seen["running"] |= h["t"] == "state" and h.get("running") is True
            return seen["line"] and seen["running"]

        await read_until(ws, both)
        await ws.disconnect()
    finally:
        engine.remove(row.container_id, force=True)


def test_download_is_a_file_and_audited(counter, admin_client):
    response = admin_client.get(reverse("logs_download", args=[counter.pk]), {"timestamps": "1"})
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    assert "line 0\n" in text and "line 2999\n" in text and "to stderr" in text
    assert text.split("\n")[0][:2] == "20"  # a timestamp first
    from console.audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="container.logs.download", target_id=counter.container_id).exists()
    only_err = b"".join(admin_client.get(reverse("logs_download", args=[counter.pk]),
                                         {"stdout": "0"}).streaming_content).decode()
    assert only_err == "to stderr\n"


def test_a_time_out_of_range_is_a_400(counter, admin_client):
    for since in ("9999999999999999999", "99999999999999999999999999s", "not a time"):
        response = admin_client.get(reverse("logs_download", args=[counter.pk]), {"since": since})
        assert response.status_code == 400, since
        assert b"invalid time" in response.content


async def test_a_time_out_of_range_on_the_socket_is_an_error_message(counter, admin_client):
    ws, _ = await open_socket(f"/ws/containers/{counter.pk}/logs/", ORIGIN, cookie(admin_client))
    await ws.send_json_to({"t": "open", "since": "9999999999999999999"})
    got = await read_until(ws, lambda h, lines: h["t"] == "error")
    assert "invalid time" in got[-1][0]["message"]
    await ws.send_json_to({"t": "open", "tail": 1})  # and the socket goes on
    await read_until(ws, lambda h, lines: h["t"] == "live")
    await ws.disconnect()
