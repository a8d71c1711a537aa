from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "console.access"
    label = "access"
    verbose_name = "Berth access"

    def ready(self):
        from django.db.models.signals import post_migrate

        from console.access.cache import connect_signals
        from console.access.roles import ensure_builtin_roles

        connect_signals()

        post_migrate.connect(lambda **kwargs: ensure_builtin_roles(), sender=self, weak=False)
