"""What a browser sends with a websocket handshake to the console under test: its Origin,
the Host it asked for, the session cookie; and the terminal's page token, from the console."""

from __future__ import annotations

import json
import time

from channels.db import database_sync_to_async
from django.urls import reverse

from console.live import protocol as p

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


async def closed_with(ws):
    """The close code the console sends on this socket (after any other messages)."""
    while True:
        out = await ws.receive_output(timeout=30)
        if out["type"] == "websocket.close":
            return out.get("code")


async def info(ws, wanted, timeout=30):
    """The terminal's next control message of type ``wanted`` and the output before it
    (``{"t": "closed", "code": ...}`` if the socket closes first)."""
    deadline = time.monotonic() + timeout
    output = b""
    while time.monotonic() < deadline:
        out = await ws.receive_output(timeout=deadline - time.monotonic())
        if out["type"] == "websocket.close":
            return {"t": "closed", "code": out.get("code")}, output
        data = out.get("bytes")
        if data is None:
            raise AssertionError(f"a text frame on the terminal: {out}")
        if data[:1] == p.T_OUTPUT:
            output += data[1:]
            continue
        message = json.loads(data[1:])
        if message["t"] == wanted:
            return message, output
    raise AssertionError(f"no {wanted!r} message within {timeout}s; output so far: {output[-500:]!r}")
