"""The operation-progress websocket through the matrix: every built-in role and
the outsider, on their own operation and on someone else's. Not visible is 4404,
before anything is subscribed."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from console.access import catalog
from console.access.roles import grant
from console.asgi import application
from console.core.models import Environment
from console.live.protocol import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from console.operations.models import Operation

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True),
              pytest.mark.asyncio(loop_scope="module")]
ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")
ROLES = [r.key for r in catalog.BUILTIN_ROLES] + ["outsider"]


def setup_world(role_key):
    local = Environment.objects.get(name="local")
    User = get_user_model()
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    if role_key != "outsider":
        grant(alice, role_key, local)
    mine = Operation.objects.create(environment=local, user=alice, username="alice", action="image.pull")
    theirs = Operation.objects.create(environment=local, user=bob, username="bob", action="image.pull")
    client = Client()
    client.force_login(alice)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()), mine.pk, theirs.pk


async def connect(path, *headers):
    """(True, None) when the socket stays open, else (False, its close code). A refused
    socket is accepted first and then closed with its code: a browser would see only 1006
    for one refused during the handshake."""
    ws = WebsocketCommunicator(application, path, headers=[HOST, *headers])
    connected, code = await ws.connect(timeout=10)
    assert connected, code
    first = await ws.receive_output(timeout=10)  # the current progress, sent at once, or the close
    if first["type"] == "websocket.close":
        return False, first["code"]
    await ws.disconnect()
    return True, None


@pytest.mark.parametrize("role_key", ROLES)
async def test_operation_socket_follows_the_matrix(role_key):
    cookie, mine, theirs = await sync_to_async(setup_world)(role_key)
    role = catalog.BUILTIN_BY_KEY.get(role_key)
    sees_own = role is not None and "operations.view" in role.permissions
    sees_all = sees_own and role.scope == catalog.SCOPE_ENVIRONMENT
    connected, code = await connect(f"/ws/operations/{mine}/", ORIGIN, cookie)
    assert connected is sees_own and (connected or code == CLOSE_NOT_FOUND)
    connected, code = await connect(f"/ws/operations/{theirs}/", ORIGIN, cookie)
    assert connected is sees_all and (connected or code == CLOSE_NOT_FOUND)


async def test_signed_out_is_4401():
    _, mine, _ = await sync_to_async(setup_world)("helpdesk")
    assert await connect(f"/ws/operations/{mine}/", ORIGIN) == (False, CLOSE_UNAUTHENTICATED)


def setup_revocable():
    from console.access.models import Assignment

    cookie, mine, theirs = setup_world("helpdesk")
    return cookie, theirs, Assignment.objects.get(user__username="alice")


async def test_an_open_socket_closes_when_access_is_withdrawn():
    from console.accounts import services

    cookie, theirs, assignment = await sync_to_async(setup_revocable)()
    ws = WebsocketCommunicator(application, f"/ws/operations/{theirs}/", headers=[ORIGIN, HOST, cookie])
    connected, _ = await ws.connect(timeout=10)
    assert connected
    await ws.receive_from(timeout=10)
    admin = await sync_to_async(get_user_model().objects.create_user)("root", is_superuser=True)
    await sync_to_async(services.unassign)(admin, assignment)
    assert await ws.receive_output(timeout=10) == {"type": "websocket.close", "code": CLOSE_NOT_FOUND}
    await ws.disconnect()


async def test_a_user_disabled_between_the_check_and_the_join_loses_the_socket(monkeypatch):
    """The race: disabled right after the socket read the user as active. A socket that
    joined the revocation groups only after its check would miss the news and stay open."""
    from console.accounts import services
    from console.live.consumers import base

    cookie, mine, _theirs = await sync_to_async(setup_world)("helpdesk")
    admin = await sync_to_async(get_user_model().objects.create_user)("root", is_superuser=True)
    read_active = base.active_user

    async def then_disabled(pk):
        user = await read_active(pk)
        if user is not None and user.username == "alice":
            alice = await sync_to_async(get_user_model().objects.get)(pk=pk)
            await sync_to_async(services.update_user)(admin, alice, email="", is_active=False,
                                                      is_superuser=False)
        return user

    monkeypatch.setattr(base, "active_user", then_disabled)
    ws = WebsocketCommunicator(application, f"/ws/operations/{mine}/", headers=[ORIGIN, HOST, cookie])
    assert (await ws.connect(timeout=10))[0]
    while (out := await ws.receive_output(timeout=10))["type"] != "websocket.close":
        pass
    assert out["code"] == CLOSE_UNAUTHENTICATED
    await ws.disconnect()
