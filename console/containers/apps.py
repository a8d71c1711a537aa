from django.apps import AppConfig


class ContainersConfig(AppConfig):
    name = "console.containers"
    label = "containers"

    def ready(self):
        from console.containers import operations  # noqa: F401  (registers the handlers)
