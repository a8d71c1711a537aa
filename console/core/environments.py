"""Which environment a request works in: the one picked in the switcher, else the first."""

from __future__ import annotations

from console.core.models import Environment


def current_environment(request) -> Environment:
    cached = getattr(request, "_berth_environment", None)
    if cached is not None:
        return cached
    environments = Environment.objects.order_by("name")
    chosen = request.session.get("environment_id")
    environment = (chosen and environments.filter(pk=chosen).first()) or environments.first() \
        or Environment.local()
    request._berth_environment = environment
    return environment
