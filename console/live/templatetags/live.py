"""``{% live_panel container %}``: the logs, terminal and stats tabs of a container's page,
with the permissions of the signed-in user (the sockets check them again)."""

import json

from django import template
from django.urls import reverse

from console.access.permissions import has_permission
from console.core import sockettokens

register = template.Library()


@register.inclusion_tag("live/_container_live.html", takes_context=True)
def live_panel(context, container, logs=None):
    user = context["request"].user
    environment = container.environment
    resource = ("container", container.container_id)
    can_terminal = has_permission(user, "containers.terminal", environment, resource)
    request = context["request"]
    terminal_token = (sockettokens.issue(user, request.session.session_key,
                                         sockettokens.purpose_for("terminal", container.pk))
                      if can_terminal else None)
    return {
        "container": container,
        "logs": logs or [],
        "can_logs": has_permission(user, "containers.logs", environment, resource),
        "can_terminal": can_terminal,
        "csp_nonce": getattr(request, "csp_nonce", ""),
        "terminal_token": terminal_token,
        "log_sources": json.dumps([{"pk": container.pk, "name": container.name, "colour": "#2563eb"}]),
        "download_url": reverse("logs_download", args=[container.pk]),
    }
