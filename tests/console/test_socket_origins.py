"""Cross-site (and cross-port) websocket hijacking: the handshake's Origin must be the
console's own origin (scheme, host and port) or a trusted one, and the terminal also needs
the page's token, bound to the user, the session and the container. Real containers (runc)."""

from __future__ import annotations

import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import signing
from django.test import Client

from console.asgi import application
from console.core import sockettokens
from console.live import protocol as p
from tests.support.access import grant
from tests.support.sockets import HOST, ORIGIN, closed_with, cookie, info, terminal_token

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


async def handshake(path, *headers):
    ws = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await ws.connect(timeout=10)
    if connected:
        await ws.disconnect()
    return connected


@pytest.mark.parametrize("origin, host", [
    (b"https://localhost", b"localhost"),  # another scheme
    (b"http://localhost:8001", b"localhost"),  # another port of the same host
    (b"http://localhost:8001", b"localhost:8000"),
    (b"http://127.0.0.1:8000", b"localhost:8000"),  # another host name
    (b"http://evil.example", b"evil.example"),  # a host the console does not serve
    (b"null", b"localhost"),
    (None, b"localhost"),  # no Origin at all
    (b"http://localhost", None),  # no Host
    (b"http://user@localhost", b"localhost"),
])
async def test_a_handshake_from_another_origin_is_refused(admin_client, origin, host):
    headers = [cookie(admin_client)]
    headers += [(b"origin", origin)] if origin else []
    headers += [(b"host", host)] if host else []
    assert await handshake("/ws/events/", *headers) is False


async def test_the_consoles_own_origins_are_accepted(admin_client, settings):
    assert await handshake("/ws/events/", ORIGIN, HOST, cookie(admin_client))
    assert await handshake("/ws/events/", (b"origin", b"http://localhost:8000"), (b"host", b"localhost:8000"),
                           cookie(admin_client))
    assert await handshake("/ws/events/", (b"origin", b"http://localhost:80"), HOST, cookie(admin_client))
    assert await handshake("/ws/events/", (b"origin", b"http://[::1]:8000"), (b"host", b"[::1]:8000"),
                           cookie(admin_client))
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example:8443", "https://*.berth.example"]
    assert await handshake("/ws/events/", (b"origin", b"https://console.example:8443"), HOST, cookie(admin_client))
    assert await handshake("/ws/events/", (b"origin", b"https://ops.berth.example"), HOST, cookie(admin_client))
    assert not await handshake("/ws/events/", (b"origin", b"http://ops.berth.example"), HOST, cookie(admin_client))
    assert not await handshake("/ws/events/", (b"origin", b"https://console.example"), HOST, cookie(admin_client))


async def test_behind_an_https_proxy_the_https_origin_is_the_consoles(admin_client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    https = (b"origin", b"https://localhost")
    assert await handshake("/ws/events/", https, HOST, (b"x-forwarded-proto", b"https"), cookie(admin_client))
    assert not await handshake("/ws/events/", https, HOST, cookie(admin_client))


# ---------------------------------------------------------------- the terminal's page token

async def open_terminal(row, client, token):
    query = "cols=80&rows=24" + (f"&token={token}" if token is not None else "")
    ws = WebsocketCommunicator(application, f"/ws/containers/{row.pk}/terminal/?{query}",
                               headers=[ORIGIN, HOST, cookie(client)])
    connected, _ = await ws.connect(timeout=10)
    assert connected
    return ws


async def refused(ws):
    message, _ = await info(ws, "refused")
    assert message["code"] == p.CLOSE_FORBIDDEN
    return await closed_with(ws)


def expired_token(client, pk):
    """A token the console issued TOKEN_SECONDS + 1 seconds ago."""
    from unittest import mock

    from django.contrib.auth import get_user_model

    account = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    then = time.time() - sockettokens.TOKEN_SECONDS - 1
    with mock.patch("django.core.signing.time.time", return_value=then):
        return sockettokens.issue(account, client.session.session_key,
                                  sockettokens.purpose_for("terminal", pk))["token"]


async def test_the_terminal_needs_a_valid_page_token(row, admin_client, django_user_model):
    good = await terminal_token(admin_client, row.pk)
    assert good
    # missing, empty, forged, altered
    for token in (None, "", "forged", good[:-2] + ("AA" if not good.endswith("AA") else "BB")):
        assert await refused(await open_terminal(row, admin_client, token)) == p.CLOSE_FORBIDDEN
    # a token signed with another key
    with_other_key = signing.dumps(signing.loads(good, salt=sockettokens.SALT), key="another key",
                                   salt=sockettokens.SALT)
    assert await refused(await open_terminal(row, admin_client, with_other_key)) == p.CLOSE_FORBIDDEN
    # expired
    old = await database_sync_to_async(expired_token)(admin_client, row.pk)
    assert await refused(await open_terminal(row, admin_client, old)) == p.CLOSE_FORBIDDEN
    # another container's token
    other = await database_sync_to_async(sockettokens.issue)(
        await database_sync_to_async(django_user_model.objects.get)(username="admin"),
        admin_client.session.session_key, sockettokens.purpose_for("terminal", row.pk + 1))
    assert await refused(await open_terminal(row, admin_client, other["token"])) == p.CLOSE_FORBIDDEN
    # another session of the same administrator
    second = Client()
    await database_sync_to_async(second.force_login)(
        await database_sync_to_async(django_user_model.objects.get)(username="admin"))
    assert await refused(await open_terminal(row, second, good)) == p.CLOSE_FORBIDDEN
    # the refusals are audited
    from console.audit.models import AuditEvent

    assert await database_sync_to_async(AuditEvent.objects.filter(
        action="container.terminal", outcome="denied", target_id=row.container_id).count)() >= 6
    # and the page's own token opens it
    ws = await open_terminal(row, admin_client, good)
    started, _ = await info(ws, "started")
    assert started["t"] == "started"
    await ws.disconnect()


async def test_another_users_token_is_refused(row, admin_client, django_user_model):
    from console.core.models import Environment

    client = Client()  # not pytest-django's ``client``: that one is admin_client

    environment = await database_sync_to_async(Environment.objects.get)(name="local")
    operator = await database_sync_to_async(django_user_model.objects.create_user)("oper", password="x" * 12)
    await database_sync_to_async(grant)(operator, "operator", environment)
    await database_sync_to_async(client.force_login)(operator)
    theirs = await terminal_token(client, row.pk)
    admins = await terminal_token(admin_client, row.pk)
    assert theirs and admins
    # the administrator's token with the operator's session, and the other way round
    assert await refused(await open_terminal(row, client, admins)) == p.CLOSE_FORBIDDEN
    assert await refused(await open_terminal(row, admin_client, theirs)) == p.CLOSE_FORBIDDEN


async def test_the_token_endpoint_answers_only_those_who_may_open_the_terminal(row, client,
                                                                             django_user_model):
    from console.core.models import Environment

    environment = await database_sync_to_async(Environment.objects.get)(name="local")
    helper = await database_sync_to_async(django_user_model.objects.create_user)("helper", password="x" * 12)
    await database_sync_to_async(grant)(helper, "helpdesk", environment)  # logs, no terminal
    await database_sync_to_async(client.force_login)(helper)
    response = await database_sync_to_async(client.get)(f"/live/containers/{row.pk}/terminal/token/")
    assert response.status_code == 403
    anonymous = Client()
    response = await database_sync_to_async(anonymous.get)(f"/live/containers/{row.pk}/terminal/token/")
    assert response.status_code == 302  # to the sign-in page


async def test_a_row_id_past_the_databases_range_is_no_such_container(admin_client):
    huge = 10 ** 25
    for kind in ("logs", "stats", "terminal"):
        ws = WebsocketCommunicator(application, f"/ws/containers/{huge}/{kind}/",
                                   headers=[ORIGIN, HOST, cookie(admin_client)])
        assert (await ws.connect(timeout=10))[0]
        assert await closed_with(ws) == p.CLOSE_NOT_FOUND
