from django.apps import AppConfig


class RegistriesConfig(AppConfig):
    name = "console.registries"
    label = "registries"

    def ready(self):
        from console.registries import operations  # noqa: F401  (registers the handlers)
