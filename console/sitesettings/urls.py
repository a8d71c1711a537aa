from django.urls import path

from console.sitesettings import views

urlpatterns = [
    path("", views.settings_page, name="settings"),
    path("reset/", views.reset, name="settings_reset"),
]
