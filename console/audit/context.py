"""Who is asking, from where: the request context an audit record picks up.

``RequestContextMiddleware`` gives every request an id (``request.request_id``,
also sent back as ``X-Request-ID``) and keeps the source IP and user agent in a
ContextVar, so ``record(...)`` called deep in a service knows them without
being passed the request.

The source IP is REMOTE_ADDR, unless REMOTE_ADDR is a trusted proxy
(``BERTH_TRUSTED_PROXIES``: addresses or networks): then X-Forwarded-For is
read from the right, skipping trusted proxies, and the first other address is
the client. Without trusted proxies X-Forwarded-For is ignored (anyone can send it).
"""

from __future__ import annotations

import ipaddress
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings


@dataclass(frozen=True)
class RequestInfo:
    request_id: str = ""
    source_ip: str | None = None
    user_agent: str = ""
    denied: list = field(default_factory=list, compare=False)  # denied events recorded in this request


def info_from_scope(scope) -> RequestInfo:
    """The same for a websocket (a Channels consumer's ``self.scope``): pass the result as
    ``record(..., request=info)``. Each connection gets its own id."""
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
    meta = {"REMOTE_ADDR": (scope.get("client") or ("", 0))[0] or "",
            "HTTP_X_FORWARDED_FOR": headers.get("x-forwarded-for", "")}
    return RequestInfo(uuid.uuid4().hex, client_ip(meta), headers.get("user-agent", "")[:300])


current: ContextVar[RequestInfo | None] = ContextVar("berth_audit_request", default=None)


@lru_cache(maxsize=8)
def _trusted(spec: tuple[str, ...]):
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def _is_trusted(address: str) -> bool:
    networks = _trusted(tuple(getattr(settings, "BERTH_TRUSTED_PROXIES", ()) or ()))
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _valid_ip(text: str) -> str | None:
    text = (text or "").strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_ip(meta) -> str | None:
    remote = _valid_ip(meta.get("REMOTE_ADDR", ""))
    if remote is None or not _is_trusted(remote):
        return remote
    hops = [hop for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _valid_ip(hop)
        if address is None:
            return remote  # a malformed header: trust nothing in it
        if not _is_trusted(address):
            return address
    return remote


def info_for(request) -> RequestInfo:
    if request is None:
        return current.get() or RequestInfo()
    if isinstance(request, RequestInfo):
        return request
    given = getattr(request, "_berth_audit_info", None)
    if given is not None:
        return given
    return RequestInfo(
        request_id=getattr(request, "request_id", "") or "",
        source_ip=client_ip(request.META),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )


class RequestContextMiddleware:
    """Give each request an id and make its source known to ``audit.record``.

    A state-changing request (POST, PUT, PATCH, DELETE) that a view refuses with
    PermissionDenied before any service recorded the denial is recorded here, as
    ``http.<url name>`` with outcome ``denied``: no refused attempt goes unrecorded.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _begin(self, request):
        request.request_id = uuid.uuid4().hex
        info = RequestInfo(request.request_id, client_ip(request.META),
                           request.META.get("HTTP_USER_AGENT", "")[:300])
        request._berth_audit_info = info
        return current.set(info)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        token = self._begin(request)
        try:
            response = self.get_response(request)
        finally:
            current.reset(token)
        response["X-Request-ID"] = request.request_id
        return response

    def process_exception(self, request, exception):
        from django.core.exceptions import PermissionDenied

        info = getattr(request, "_berth_audit_info", None)
        if (not isinstance(exception, PermissionDenied) or info is None or info.denied
                or request.method in ("GET", "HEAD", "OPTIONS", "TRACE")):
            return None
        from console import audit

        match = getattr(request, "resolver_match", None)
        name = (match.view_name if match and match.view_name else "unknown").replace(":", ".")
        user = getattr(request, "user", None)
        audit.record(user=user, action=f"http.{name}", outcome="denied", error=str(exception)[:500],
                     target_type="url", target_name=request.path[:300], request=request,
                     details={"method": request.method})
        return None

    async def __acall__(self, request):
        token = self._begin(request)
        try:
            response = await self.get_response(request)
        finally:
            current.reset(token)
        response["X-Request-ID"] = request.request_id
        return response
