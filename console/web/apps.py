from django.apps import AppConfig


class WebConfig(AppConfig):
    """The pages' shell, above every other app: the dashboard, the environment switcher, the
    side menu, the list pages' helpers and the template helpers (``{% load berth %}``)."""

    name = "console.web"
    label = "web"
    verbose_name = "Berth pages"
