"""The dashboard's engine-facts websocket: who may connect and what they get.

The Celery task runs eagerly in-process here (a real worker runs in the browser
test); the channel layer is the real Redis one.
"""

import pytest
from channels.testing import WebsocketCommunicator

from console import celery_app
from console.asgi import application
from console.live import protocol
from console.live.consumers import engine_facts as consumers

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.asyncio(loop_scope="module")]

ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")


@pytest.fixture
def eager_tasks():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def session_cookie(admin_client):
    return (b"cookie", f"sessionid={admin_client.cookies['sessionid'].value}".encode())


def communicator(*headers):
    return WebsocketCommunicator(application, "/ws/engine-facts/", headers=[HOST, *headers])


async def refused(ws) -> int:
    """Accepted, then closed with a code a browser can show (not refused in the handshake,
    which a browser sees as 1006): the close code."""
    connected, _ = await ws.connect(timeout=10)
    assert connected
    output = await ws.receive_output(timeout=10)
    assert output["type"] == "websocket.close", output
    return output["code"]


async def test_signed_out_is_closed_with_4401():
    assert await refused(communicator(ORIGIN)) == protocol.CLOSE_UNAUTHENTICATED


async def test_foreign_origin_is_refused(session_cookie):
    ws = communicator((b"origin", b"http://evil.example"), session_cookie)
    connected, _ = await ws.connect(timeout=10)
    assert connected is False


@pytest.mark.root  # the worker asks runc and the cgroups
async def test_signed_in_user_gets_the_facts_a_worker_reports(session_cookie, eager_tasks, monkeypatch):
    monkeypatch.setattr(consumers.EngineFactsConsumer, "min_interval", 0)
    ws = communicator(ORIGIN, session_cookie)
    connected, code = await ws.connect(timeout=10)
    assert connected, code
    html = await ws.receive_from(timeout=30)
    assert 'id="engine-facts"' in html and 'hx-swap-oob="true"' in html
    assert 'data-state="fresh"' in html
    assert 'data-fact="runtime">runc' in html
    assert "Cgroups" in html
    # asking again refreshes again
    await ws.send_json_to({"action": "refresh", "HEADERS": {}})
    assert 'data-state="fresh"' in await ws.receive_from(timeout=30)
    await ws.disconnect()


async def test_last_known_facts_show_at_once_then_refresh(session_cookie, eager_tasks):
    ws = communicator(ORIGIN, session_cookie)
    await ws.connect(timeout=10)
    await ws.receive_from(timeout=30)
    await ws.disconnect()
    ws = communicator(ORIGIN, session_cookie)
    await ws.connect(timeout=10)
    assert 'data-state="refreshing"' in await ws.receive_from(timeout=30)
    assert 'data-state="fresh"' in await ws.receive_from(timeout=30)
    await ws.disconnect()


async def test_message_not_in_the_protocol_closes_with_4400(session_cookie, eager_tasks):
    ws = communicator(ORIGIN, session_cookie)
    await ws.connect(timeout=10)
    await ws.receive_from(timeout=30)
    await ws.send_json_to({"action": "rm -rf /"})
    output = await ws.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": protocol.CLOSE_BAD_MESSAGE}


async def test_page_says_so_when_no_worker_answers(session_cookie, monkeypatch):
    from console.inventory.tasks import refresh_engine_facts

    monkeypatch.setattr(consumers.EngineFactsConsumer, "worker_timeout", 0.5)
    # A worker thread may be running for other tests: drop the request, as a dead worker would.
    monkeypatch.setattr(refresh_engine_facts, "delay", lambda *args, **kwargs: None)
    ws = communicator(ORIGIN, session_cookie)
    await ws.connect(timeout=10)
    html = await ws.receive_from(timeout=10)
    assert 'data-state="no-worker"' in html
    assert "Is the Celery worker running?" in html
    await ws.disconnect()


@pytest.fixture
def counted_tasks(eager_tasks, monkeypatch):
    """The real task (eager), with a count of how many times it was queued."""
    from console.inventory.tasks import refresh_engine_facts

    queued = []
    real = refresh_engine_facts.delay
    monkeypatch.setattr(refresh_engine_facts, "delay", lambda *a, **k: (queued.append(a), real(*a, **k))[1])
    return queued


async def test_a_burst_of_refreshes_queues_one_task(session_cookie, counted_tasks):
    ws = communicator(ORIGIN, session_cookie)
    assert (await ws.connect(timeout=10))[0]
    assert 'data-state="fresh"' in await ws.receive_from(timeout=30)
    for _ in range(50):
        await ws.send_json_to({"action": "refresh"})
    # the socket is still open and answered nothing more: no queued task, no new answer
    await ws.send_to(text_data="not json")
    output = await ws.receive_output(timeout=10)
    assert output == {"type": "websocket.close", "code": protocol.CLOSE_BAD_MESSAGE}
    assert len(counted_tasks) == 1


@pytest.mark.parametrize("frame", [
    {"text_data": "[" * 30000 + "]" * 30000},  # deep enough for the parser's recursion limit
    {"text_data": '{"action": ' * 500 + '"refresh"' + "}" * 500},
    {"text_data": "x" * 100_000},
    {"bytes_data": b'{"action": "refresh"}'},
])
async def test_malformed_frames_close_with_4400_not_1011(session_cookie, counted_tasks, frame):
    ws = communicator(ORIGIN, session_cookie)
    assert (await ws.connect(timeout=10))[0]
    await ws.receive_from(timeout=30)
    await ws.send_to(**frame)
    output = await ws.receive_output(timeout=10)
    assert output == {"type": "websocket.close", "code": protocol.CLOSE_BAD_MESSAGE}


async def test_users_without_a_role_here_get_no_facts(counted_tasks, django_user_model):
    from channels.db import database_sync_to_async
    from django.test import Client

    from console.core.models import Environment
    from tests.support.access import grant

    nobody = await database_sync_to_async(django_user_model.objects.create_user)("nobody", password="x" * 12)
    client = Client()
    await database_sync_to_async(client.force_login)(nobody)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    ws = communicator(ORIGIN, cookie)
    assert await refused(ws) == protocol.CLOSE_FORBIDDEN
    assert counted_tasks == []
    # a role in another environment is not one here
    other = await database_sync_to_async(Environment.objects.create)(name="zz-elsewhere")
    await database_sync_to_async(grant)(nobody, "helpdesk", other)
    ws = communicator(ORIGIN, cookie)
    assert await refused(ws) == protocol.CLOSE_FORBIDDEN
    # a role here is
    local = await database_sync_to_async(Environment.local)()
    await database_sync_to_async(grant)(nobody, "helpdesk", local)
    ws = communicator(ORIGIN, cookie)
    assert (await ws.connect(timeout=10))[0]
    await ws.disconnect()
