"""Per-page tokens for the sockets that act (the terminal).

The session cookie goes with every handshake, whoever's page opens it; the Origin check
(console.core.origins) stops other origins, and this token stops anything that is not a
page the console rendered for this user: a token is signed with SECRET_KEY, names the user,
a tag of the session (an HMAC of its key, never the key) and the object and purpose
("terminal:<container pk>"), and is good for ``TOKEN_SECONDS``. The page embeds it and sends
it in the socket's URL query (``?token=``): checked before the socket does anything, it
needs no new frame in the protocol, and it is worthless without the session cookie of the
same session; the page asks ``/live/containers/<pk>/terminal/token/`` for a fresh one when
its own is about to expire. Another origin cannot read either (the same-origin policy).
"""

from __future__ import annotations

import time

from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "berth.socket-token"
TOKEN_SECONDS = 300


def _session_tag(session_key: str | None) -> str:
    return salted_hmac(SALT, session_key or "").hexdigest()[:32]


def purpose_for(kind: str, pk) -> str:
    return f"{kind}:{pk}"


def issue(user, session_key: str | None, purpose: str) -> dict:
    """{"token", "expires"} (Unix seconds) for this user, session and purpose."""
    token = signing.dumps({"u": user.pk, "s": _session_tag(session_key), "p": purpose}, salt=SALT)
    return {"token": token, "expires": int(time.time()) + TOKEN_SECONDS}


def valid(token: str | None, user, session_key: str | None, purpose: str) -> bool:
    if not token or len(token) > 500 or not session_key:
        return False
    try:
        claims = signing.loads(token, salt=SALT, max_age=TOKEN_SECONDS)
    except signing.BadSignature:  # forged, altered or expired (SignatureExpired is one)
        return False
    return (isinstance(claims, dict) and claims.get("u") == user.pk and claims.get("p") == purpose
            and constant_time_compare(str(claims.get("s", "")), _session_tag(session_key)))
