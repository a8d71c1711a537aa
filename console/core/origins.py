"""The websocket handshake's Origin check: scheme, host and port, not the host name alone.

A browser sends the page's origin with every websocket handshake and the session cookie
with it, whatever page opened the socket. A page served from another port of the console's
host (a container's published port, for one) is same-site but another origin: it must not
open a socket with an administrator's cookie. So a handshake is let through only when its
Origin is the console's own (the scheme the connection came in on, and the Host it was
asked for, itself one of ALLOWED_HOSTS) or one of CSRF_TRUSTED_ORIGINS. Anything else, a
missing Origin included, is refused (HTTP 403) before any consumer runs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin like ``https://example.com:8443``, or None."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.username or parts.password or parts.query or parts.fragment:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def _header(scope, name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers", []) if key.lower() == name]
    if len(values) != 1:  # none, or several (a confused or hostile client): no answer
        return None
    try:
        return values[0].decode("ascii")
    except UnicodeDecodeError:
        return None


def _scheme(scope) -> str:
    secure = scope.get("scheme") in ("wss", "https")
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:  # behind an HTTPS proxy, as Django's request.is_secure() believes it
        name = proxy[0].removeprefix("HTTP_").lower().replace("_", "-").encode()
        secure = secure or _header(scope, name) == proxy[1]
    return "https" if secure else "http"


def own_host(scope) -> str | None:
    """The handshake's Host header, when that host is one this console serves (ALLOWED_HOSTS,
    as for HTTP's ``request.get_host()``)."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host.lower())
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return None
    return host


def own_origin(scope) -> tuple[str, str, int] | None:
    """The origin this handshake was addressed to: its scheme and its Host header, when that
    host is one this console serves."""
    host = own_host(scope)
    return None if host is None else normalise(f"{_scheme(scope)}://{host}")


def _trusted(origin: tuple[str, str, int]) -> bool:
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "://*." in entry:  # Django's form: "https://*.example.com" trusts its subdomains
            wanted = normalise(entry.replace("://*.", "://", 1))
            if (wanted and wanted[0] == scheme and wanted[2] == port
                    and (host == wanted[1] or host.endswith("." + wanted[1]))):
                return True
        elif normalise(entry) == origin:
            return True
    return False


def origin_allowed(scope) -> bool:
    given = _header(scope, b"origin")
    origin = normalise(given) if given else None
    if origin is None:
        return False
    return origin == own_origin(scope) or _trusted(origin)


class OriginValidator:
    """ASGI middleware for the websocket router: refuse a handshake from another origin."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
