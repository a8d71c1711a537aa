"""The stats, containers-list and events websockets: readings of a running container, live
list rows (CPU, memory, re-rendered rows when the engine changes a container) and the
events page's stream; who may connect; bad input."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from console.asgi import application
from console.core.models import Environment
from console.inventory.models import Container
from console.inventory.reconcile import reconcile
from console.live import protocol as p
from tests.support.inventory import live_follower
from tests.support.sockets import closed_with

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")


def cookie(client):
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def socket(path, client):
    ws = WebsocketCommunicator(application, path, headers=[ORIGIN, HOST, cookie(client)])
    connected, _ = await ws.connect(timeout=10)
    assert connected
    return ws


async def until(ws, predicate, timeout=20, decode=json.loads):
    deadline = time.monotonic() + timeout
    while True:
        out = await ws.receive_output(timeout=max(0.1, deadline - time.monotonic()))
        assert out["type"] != "websocket.close", out
        message = decode(out["text"])
        if predicate(message):
            return message


def event_row(html: str) -> dict:
    """The row of one event as htmx gets it: an out-of-band swap atop the events table."""
    assert html.startswith('<tbody hx-swap-oob="afterbegin:#event-rows"><tr '), html
    return dict(re.findall(r'data-(type|action|id)="([^"]*)"', html), html=html)


@pytest.fixture
def busy(engine):
    container, _ = engine.run("test/busybox:latest", ["sh", "-c", "while true; do :; done"], name="live-busy")
    environment = Environment.objects.get(name="local")
    reconcile(environment, "containers")
    yield Container.objects.get(environment=environment, container_id=container.id)
    engine.remove(container.id, force=True)


async def test_stats_of_a_busy_container_then_its_stop(busy, admin_client, engine):
    ws = await socket(f"/ws/containers/{busy.pk}/stats/", admin_client)
    stats = await until(ws, lambda m: m["t"] == "stats")
    assert stats["cpu_percent"] > 20 and stats["memory_usage"] > 0 and stats["pids"] >= 1
    assert {"net_rx", "net_tx", "block_read", "block_write", "memory_limit"} <= set(stats)
    await asyncio.to_thread(engine.kill, busy.container_id)
    state = await until(ws, lambda m: m["t"] == "state" and not m["running"])
    assert state["status"] == "exited"
    await ws.send_to(text_data="garbage")
    assert await closed_with(ws) == p.CLOSE_BAD_MESSAGE


async def test_list_gets_live_stats_and_rows_changed_by_the_engine(busy, admin_client, engine):
    environment = await database_sync_to_async(Environment.objects.get)(name="local")
    stop = threading.Event()
    follower = await asyncio.to_thread(live_follower, environment, stop)
    try:
        ws = await socket("/ws/containers/live/", admin_client)
        await ws.send_json_to({"t": "watch", "ids": [busy.pk]})
        # the row's cells, rendered, for htmx to swap in out of band
        cells = await until(ws, lambda m: f'id="container-cpu-{busy.pk}"' in m, decode=str)
        cpu = re.search(rf'<td id="container-cpu-{busy.pk}" class="live-cpu" data-live-cpu hx-swap-oob="true">'
                        r'([\d.]+)%</td>', cells)
        assert cpu and float(cpu.group(1)) > 20, cells
        assert re.search(rf'<td id="container-mem-{busy.pk}" [^>]*hx-swap-oob="true"[^>]*>[\d.]+ (B|KiB|MiB)</td>',
                         cells), cells
        await asyncio.to_thread(engine.stop, busy.container_id, 1)  # not through the console
        row = await until(ws, lambda m: f'id="container-row-{busy.pk}" hx-swap-oob="true"' in m
                          and 'data-state="exited"' in m, decode=str)
        assert row.startswith("<tr ")
        # a new container: the page is told to reload its rows; once gone, its row is deleted
        new, _ = await asyncio.to_thread(engine.run, "test/busybox:latest", ["sleep", "60"], name="live-new")
        try:
            await until(ws, lambda m: '<span hx-swap-oob="innerHTML:#containers-added">1</span>' in m, decode=str)
            new_pk = await database_sync_to_async(
                lambda: Container.objects.get(environment=environment, container_id=new.id).pk)()
        finally:
            await asyncio.to_thread(engine.remove, new.id, force=True)
        await until(ws, lambda m: f'<tr id="container-row-{new_pk}" hx-swap-oob="delete"></tr>' in m, decode=str)
        await ws.send_json_to({"t": "watch", "ids": "all"})
        assert await closed_with(ws) == p.CLOSE_BAD_MESSAGE
    finally:
        stop.set()
        await asyncio.to_thread(follower.join, 10)


async def test_events_page_stream(busy, admin_client, client, engine):
    environment = await database_sync_to_async(Environment.objects.get)(name="local")
    stop = threading.Event()
    follower = await asyncio.to_thread(live_follower, environment, stop)
    try:
        ws = await socket("/ws/events/", admin_client)
        # the last hour first: this container's start
        start = await until(ws, lambda m: m["id"] == busy.container_id and m["action"] == "start",
                            decode=event_row)
        assert start["type"] == "container" and ">live-busy <code" in start["html"]
        await asyncio.to_thread(engine.kill, busy.container_id)
        die = await until(ws, lambda m: m["action"] == "die" and m["id"] == busy.container_id, decode=event_row)
        assert "exitCode=" in die["html"]
        await ws.send_to(text_data=json.dumps({"t": "subscribe"}))
        assert await closed_with(ws) == p.CLOSE_BAD_MESSAGE
    finally:
        stop.set()
        await asyncio.to_thread(follower.join, 10)
    anonymous = WebsocketCommunicator(application, "/ws/events/", headers=[ORIGIN, HOST])
    await anonymous.connect(timeout=10)
    assert await closed_with(anonymous) == p.CLOSE_UNAUTHENTICATED


def test_pages_render(admin_client, busy):
    from django.urls import reverse

    listing = admin_client.get(reverse("containers")).content.decode()
    assert f'id="container-row-{busy.pk}"' in listing and "live-list.js" in listing
    detail = admin_client.get(reverse("container_detail", args=[busy.pk])).content.decode()
    assert "data-log-viewer" in detail and "data-terminal" in detail and "data-stats" in detail
    merged = admin_client.get(reverse("merged_logs"), {"container": [busy.pk]}).content.decode()
    assert "live-busy" in merged and "data-log-viewer" in merged
    assert admin_client.get(reverse("events")).status_code == 200
