"""Log searches are bounded per user and per process, and wait in a pool of their own: six
slow searches by one read-only user do not stall anyone else's live sockets, and one more
than a user may have waiting is answered "too many searches" at once. Real containers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from console.asgi import application
from console.core.models import Environment
from console.inventory.models import Container
from console.inventory.reconcile import reconcile
from console.live import limits
from console.live import protocol as p
from tests.support.access import grant
from tests.support.sockets import browser_headers

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SLOW = {"t": "search", "q": "(a+)+$", "regex": True}  # backtracks for ever on a line of a's and a "!"


@pytest.fixture(scope="module")
def backtracker(engine):
    container, _ = engine.run("test/busybox:latest", ["sh", "-c", f"echo {'a' * 40}!; echo done; sleep 3600"],
                              name="live-backtrack")
    yield container
    engine.remove(container.id, force=True)


@pytest.fixture
def row(backtracker):
    environment = Environment.objects.get(name="local")
    reconcile(environment, "containers")
    return Container.objects.get(environment=environment, container_id=backtracker.id)


@pytest.fixture
def reader(django_user_model):
    user = django_user_model.objects.create_user("reader", password="x" * 12)
    grant(user, "helpdesk", Environment.objects.get(name="local"))  # sees and reads logs; nothing else
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def short_searches(monkeypatch):
    monkeypatch.setattr(p, "SEARCH_SECONDS", 2.0)  # the child gives up after 2 s, is killed 2 s later


async def logs_socket(row, client):
    ws = WebsocketCommunicator(application, f"/ws/containers/{row.pk}/logs/", headers=browser_headers(client))
    connected, _ = await ws.connect(timeout=10)
    assert connected
    return ws


async def searching(n, timeout=10):
    """Until ``n`` searches are running or waiting in this process."""
    deadline = time.monotonic() + timeout
    while limits.searches.pending.total() < n:
        assert time.monotonic() < deadline, limits.searches.pending
        await asyncio.sleep(0.02)


async def message(ws, kind, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        data = await ws.receive_from(timeout=max(0.01, deadline - time.monotonic()))
        header = json.loads(data.partition("\n")[0])
        if header["t"] == kind:
            return header


async def test_six_slow_searches_by_one_user_stall_no_one_else(row, reader, admin_client, short_searches):
    sockets = [await logs_socket(row, reader) for _ in range(6)]
    for i, ws in enumerate(sockets):
        await ws.send_json_to({**SLOW, "id": i})
    await searching(6)  # the six have reached their threads: a stall would start now
    # someone else's log tail comes at once, not after the searches
    started = time.monotonic()
    other = await logs_socket(row, admin_client)
    await other.send_json_to({"t": "open", "tail": 10})
    await message(other, "live", timeout=10)
    assert time.monotonic() - started < 2.0
    await other.disconnect()
    # the reader's searches end (two at a time), each with an answer
    first = await message(sockets[0], "search", timeout=15)
    assert first["id"] == 0 and first["partial"] is True
    for ws in sockets:
        await ws.disconnect()


async def test_one_search_too_many_is_answered_at_once(row, reader, short_searches, monkeypatch):
    monkeypatch.setattr(limits.searches, "waiting_per_user", 2)
    sockets = [await logs_socket(row, reader) for _ in range(3)]
    for i, ws in enumerate(sockets[:2]):
        await ws.send_json_to({**SLOW, "id": i})
    await searching(2)
    started = time.monotonic()
    await sockets[2].send_json_to({**SLOW, "id": 2})
    refused = await message(sockets[2], "search", timeout=5)
    assert time.monotonic() - started < 1.0
    assert refused["id"] == 2 and refused["busy"] is True and "Too many searches" in refused["error"]
    # the socket goes on, and once a search ends another may start
    await message(sockets[0], "search", timeout=15)
    await sockets[2].send_json_to({"t": "search", "id": 3, "q": "done"})
    answer = await message(sockets[2], "search", timeout=15)
    assert answer["id"] == 3 and answer["count"] == 1
    for ws in sockets:
        await ws.disconnect()


async def test_live_filters_are_counted_per_user(row, reader, monkeypatch):
    monkeypatch.setattr(limits.filters, "per_user", 1)
    first, second = await logs_socket(row, reader), await logs_socket(row, reader)
    for ws in (first, second):
        await ws.send_json_to({"t": "open", "tail": 10})
        await message(ws, "live")
    await first.send_json_to({"t": "filter", "q": "done"})
    assert (await message(first, "filter"))["active"] is True
    await second.send_json_to({"t": "filter", "q": "done"})
    refused = await message(second, "filter")
    assert refused["active"] is False and refused["busy"] is True
    await first.send_json_to({"t": "filter", "q": ""})  # off: the slot is free again
    assert (await message(first, "filter"))["active"] is False
    await second.send_json_to({"t": "filter", "q": "done"})
    assert (await message(second, "filter"))["active"] is True
    await first.disconnect()
    await second.disconnect()
    assert limits.filters.held.total() == 0
