"""Disabling a user ends every session of theirs and closes their open sockets; enabling them
again revives nothing (issue 12)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from console.access.roles import grant
from console.accounts import services
from console.asgi import application
from console.core.models import Environment
from console.live.protocol import CLOSE_UNAUTHENTICATED
from console.operations.models import Operation

User = get_user_model()
PASSWORD = "a long enough passphrase 42"
ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")  # the Origin must be the console's own: its scheme, host and port


def sessions_of(user) -> int:
    return sum(1 for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(user.pk))


@pytest.mark.django_db
def test_disabling_ends_every_session_and_enabling_revives_none(admin_client, admin):
    nina = User.objects.create_user("nina", password=PASSWORD)
    grant(nina, "helpdesk", Environment.objects.get(name="local"))
    laptop, phone = Client(), Client()
    for device in (laptop, phone):
        assert device.post("/login/", {"username": "nina", "password": PASSWORD}).status_code == 302
        assert device.get(reverse("containers")).status_code == 200
    assert sessions_of(nina) == 2 and sessions_of(admin) == 1
    url = reverse("user_detail", args=[nina.pk])
    admin_client.post(url, {"form": "account", "email": "", "is_active": "", "is_superuser": ""})
    assert sessions_of(nina) == 0 and sessions_of(admin) == 1  # only hers
    admin_client.post(url, {"form": "account", "email": "", "is_active": "on", "is_superuser": ""})
    nina.refresh_from_db()
    assert nina.is_active
    for device in (laptop, phone):
        response = device.get(reverse("containers"))
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    from console.audit.models import AuditEvent

    disabled = AuditEvent.objects.filter(action="user.update", target_name="nina").order_by("pk").first()
    assert disabled.details["is_active"] is False and disabled.details["sessions_ended"] == 2


def _world():
    local = Environment.objects.get(name="local")
    nina = User.objects.create_user("nina")
    grant(nina, "helpdesk", local)
    admin = User.objects.create_superuser("root", "", PASSWORD)
    operation = Operation.objects.create(environment=local, user=nina, username="nina", action="image.pull")
    client = Client()
    client.force_login(nina)
    return nina, admin, operation, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/ws/operations/{op}/", "/ws/events/"])
async def test_disabling_closes_the_users_open_sockets(console_engine, path):
    nina, admin, operation, cookie = await sync_to_async(_world)()
    ws = WebsocketCommunicator(application, path.format(op=operation.pk), headers=[ORIGIN, HOST, cookie])
    connected, code = await ws.connect(timeout=10)
    assert connected, code
    # Once: the socket joined its access groups before checking, so however this falls
    # between its check and its join, it hears of it or sees it.
    await sync_to_async(services.update_user)(admin, nina, email="", is_active=False, is_superuser=False)
    while (out := await ws.receive_output(timeout=15))["type"] != "websocket.close":
        pass
    assert out["code"] == CLOSE_UNAUTHENTICATED
    await ws.disconnect()
