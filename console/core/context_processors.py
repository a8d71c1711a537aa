"""What every page's layout needs: the side menu and the environment switcher."""

from django.urls import reverse

from console.core.navigation import MENU


def navigation(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    from console.core.models import Environment

    environments = list(Environment.objects.order_by("name"))
    current = _current_environment(request, environments)
    path = request.path
    menu = [
        {"label": item.label, "url": reverse(item.url_name), "icon": item.icon,
         "active": path == reverse(item.url_name)
         or (item.url_name != "dashboard" and path.startswith(reverse(item.url_name)))}
        for item in MENU
    ]
    return {"menu": menu, "environments": environments, "current_environment": current}


def _current_environment(request, environments):
    chosen = request.session.get("environment_id")
    for environment in environments:
        if environment.pk == chosen:
            return environment
    return environments[0] if environments else None
