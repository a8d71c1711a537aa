"""What a browser sends with a websocket handshake to the console under test: its Origin,
the Host it asked for, the session cookie; and the terminal's page token, from the console."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.urls import reverse

ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")


def cookie(client):
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def browser_headers(client=None):
    """Origin and Host of the console's own page, and the client's session cookie if any."""
    return [ORIGIN, HOST] + ([cookie(client)] if client is not None else [])


@database_sync_to_async
def terminal_token(client, pk) -> str:
    """The token the console gives this client's page for container row ``pk`` ("" if none)."""
    response = client.get(reverse("terminal_token", args=[pk]))
    return response.json()["token"] if response.status_code == 200 else ""
