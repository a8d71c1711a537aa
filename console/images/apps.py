from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "console.images"
    label = "images"

    def ready(self):
        from console.images import operations  # noqa: F401  (registers the handlers)
