from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "console.networks"
    label = "networks"

    def ready(self):
        from console.networks import operations  # noqa: F401  (registers the handlers)
