"""What every page's layout needs: the side menu and the environment switcher."""

from django.urls import reverse

from console.core.environments import current_environment
from console.core.models import Environment
from console.web.navigation import menu_for


def navigation(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    path = request.path
    environment = current_environment(request)
    menu = []
    for item in menu_for(request.user, environment):
        url = reverse(item.url_name)
        active = path == url or (item.url_name != "dashboard" and path.startswith(url))
        menu.append({"label": item.label, "url": url, "icon": item.icon, "active": active})
    return {
        "menu": menu,
        "environments": list(Environment.objects.order_by("name")),
        "current_environment": environment,
    }
