"""Which registries the console may reach, and what a failure to reach one tells whom.

Administrators decide (``registry_allowlist`` on the Settings page, else
``BERTH_REGISTRY_ALLOWLIST``). A host may be reached when it is:

- Docker Hub;
- listed: ``host`` (any port), ``host:port``, ``*.example.com`` (its subdomains), whatever
  its address, loopback and private ones included: listing is how they are allowed;
- a configured registry's host, or any host when ``*`` is listed, provided that it is not a
  loopback, private, link-local or otherwise internal address (nor a name resolving to one).

``check`` is called by the services before enqueueing and by the tasks before connecting.
A refusal says the same whatever is listening there. And a failure to reach an allowed
registry reads, for anyone but an administrator, as one "cannot reach registry X": no
"connection refused" against "timed out" against "not a registry", so a pull cannot map
ports. The details go to the server's log, and to administrators' operations as they are.
(Left open: a name that resolves to a public address when checked and to an internal one
when the engine connects, for a host allowed by ``*`` or by its registry.)
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket

from django.core.exceptions import ValidationError

from console.access.permissions import is_administrator
from console.sitesettings import catalog
from engine.distribution.registry import DOCKER_HUB_HOSTS
from engine.errors import EngineError, InvalidArgument, RegistryError
from engine.images.reference import parse

log = logging.getLogger("berth.registries")


def host_of(reference: str) -> str:
    """The registry host of an image reference (``docker.io`` for Docker Hub)."""
    try:
        return parse(reference).registry.lower()
    except InvalidArgument as exc:
        raise ValidationError(str(exc)) from None


def _split(host: str) -> tuple[str, str]:
    """(name, port) of ``name[:port]`` or ``[v6][:port]``."""
    if host.startswith("["):
        end = host.find("]")
        return host[1:end], host[end + 2:] if end >= 0 else ""
    name, _, port = host.partition(":") if host.count(":") == 1 else (host, "", "")
    return name, port


def _listed(host: str, entries: list[str]) -> bool:
    name, port = _split(host)
    for entry in entries:
        entry = entry.strip().lower()
        if entry == "*" or not entry:
            continue
        if entry.startswith("*."):
            if name.endswith(entry[1:]):
                return True
            continue
        entry_name, entry_port = _split(entry)
        if entry_name == name and (not entry_port or entry_port == port):
            return True
    return False


def _internal_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified or not ip.is_global)


def internal(host: str) -> bool:
    """Is ``host`` (or any address its name resolves to) loopback, private or otherwise internal?"""
    name, _ = _split(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return _internal_address(name)
    except ValueError:
        pass  # a name, not an address
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False  # it will not be reached either; the engine says so in its words
    return any(_internal_address(info[4][0]) for info in infos)


def allowed(host: str) -> bool:
    from console.registries.models import Registry

    host = host.lower()
    if host in DOCKER_HUB_HOSTS:
        return True
    entries = catalog.get("registry_allowlist")
    if _listed(host, entries):
        return True
    public_ok = "*" in entries or Registry.objects.filter(host=host).exists()
    return public_ok and not internal(host)


def refusal(host: str) -> str:
    return (f"Berth may not reach registry {host}: ask an administrator to allow it "
            "(Settings, Registries Berth may reach).")


def check(host: str) -> None:
    """For the services: ValidationError (nothing is enqueued) unless ``host`` may be reached."""
    if not allowed(host):
        raise ValidationError(refusal(host))


def check_in_task(host: str) -> None:
    """For the tasks: the same check when they run (the list may have changed meanwhile)."""
    if not allowed(host):
        raise RegistryError(refusal(host))


def administrator(user, environment) -> bool:
    """Who sees a registry failure in the engine's words."""
    return is_administrator(user, environment)


def plain(exc: EngineError, host: str, operation) -> EngineError:
    """What a failure to reach ``host`` says to the operation's user (see the module's doc)."""
    if not isinstance(exc, RegistryError) or administrator(operation.user, operation.environment):
        return exc
    if getattr(exc, "code", ""):
        return exc  # the registry itself answered, in the distribution protocol's own words
    log.warning("operation %s: registry %s: %s", operation.pk, host, exc)
    return RegistryError(f"cannot reach registry {host}")


@contextlib.contextmanager
def errors_for(operation, host: str):
    """Around a task's calls to ``host``: its failures, said as ``plain`` says."""
    try:
        yield
    except EngineError as exc:
        told = plain(exc, host, operation)
        if told is exc:
            raise
        raise told from None
