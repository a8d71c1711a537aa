from django.apps import AppConfig


class RegistriesConfig(AppConfig):
    name = "console.registries"
    label = "registries"
