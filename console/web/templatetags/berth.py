"""Small template helpers shared by the pages."""

from django import template
from django.http.request import split_domain_port
from django.utils.http import urlencode

register = template.Library()


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with some parameters changed (for sort and page links)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    return "?" + urlencode(sorted(params.lists()), doseq=True) if params else "?"


@register.filter
def short_id(value: str) -> str:
    return (value or "").removeprefix("sha256:")[:12]


@register.filter
def state_class(state: str) -> str:
    return {"succeeded": "ok", "running": "busy", "queued": "busy", "failed": "bad",
            "cancelled": "muted", "exited": "muted", "created": "muted", "paused": "warn",
            "restarting": "warn", "dead": "bad"}.get(state, "")


@register.filter
def split(value: str) -> list[str]:
    return value.split()


@register.filter
def get(mapping, key):
    return (mapping or {}).get(key)


@register.filter
def shell_join(words) -> str:
    """A command as a user would type it, quoting where needed."""
    import shlex

    return shlex.join(str(w) for w in (words or []))


@register.simple_tag(takes_context=True)
def can(context, permission: str) -> bool:
    """``{% can "images.pull" as can_pull %}``: whether to show a button. Views and services
    check again; this only keeps the page honest about what the user may do."""
    from console.access.permissions import has_permission
    from console.core.environments import current_environment

    request = context["request"]
    return has_permission(request.user, permission, current_environment(request))


@register.filter
def host_only(host: str) -> str:
    """The host name of a Host header, without its port ("[::1]:8000" -> "[::1]")."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@register.filter
def cpus(nano_cpus) -> str:
    """Docker's NanoCpus as the --cpus value a user typed (1500000000 -> "1.5")."""
    return f"{(nano_cpus or 0) / 1e9:g}"


@register.filter
def holds_a_role(user) -> bool:
    """A role in some environment, or an administrator (pages for role holders check again)."""
    from console.access.permissions import has_role

    return has_role(user)


@register.simple_tag(takes_context=True)
def published_url(context, port) -> str:
    """The link to a container's published ``port`` on the host the console was reached at
    (``127.0.0.1:8000`` -> ``http://127.0.0.1:18081/``; ``[::1]:8000`` -> ``http://[::1]:18081/``).
    Rows rendered for a websocket have no request: they pass ``host`` (the handshake's Host)."""
    request = context.get("request")
    host = request.get_host() if request is not None else context.get("host") or ""
    domain, _port = split_domain_port(host)
    return f"http://{domain or '127.0.0.1'}:{int(port)}/"


@register.filter
def binary_size(value) -> str:
    """Bytes as the live pages show them: ``512 B``, ``3.4 MiB``, ``12 GiB``."""
    try:
        size = float(value)
    except (TypeError, ValueError):
        return ""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    unit = 0
    while size >= 1024 and unit < len(units) - 1:
        size /= 1024
        unit += 1
    return f"{size:.1f} {units[unit]}" if unit and size < 10 else f"{size:.0f} {units[unit]}"
