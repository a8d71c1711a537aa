from django.apps import AppConfig


class SiteSettingsConfig(AppConfig):
    name = "console.sitesettings"
    label = "sitesettings"
    verbose_name = "Berth settings"
