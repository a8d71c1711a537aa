from django.apps import AppConfig


class VolumesConfig(AppConfig):
    name = "console.volumes"
    label = "volumes"

    def ready(self):
        from console.volumes import operations  # noqa: F401  (registers the handlers)
