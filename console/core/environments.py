"""Which environment a request works in: the one picked in the switcher, else the first."""

from __future__ import annotations

from console.core.models import Environment


def environment_for_session(session) -> Environment:
    """The environment the switcher stored in ``session``, else the first (the local one
    is made again if none exists). Pages and websockets both ask this."""
    environments = Environment.objects.order_by("name")
    chosen = session.get("environment_id")
    return (chosen and environments.filter(pk=chosen).first()) or environments.first() or Environment.local()


def current_environment(request) -> Environment:
    cached = getattr(request, "_berth_environment", None)
    if cached is None:
        cached = request._berth_environment = environment_for_session(request.session)
    return cached
