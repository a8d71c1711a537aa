from django.urls import path

from console.live import views

urlpatterns = [
    path("logs/", views.merged_logs, name="merged_logs"),
    path("events/", views.events, name="events"),
    path("containers/<int:pk>/logs/download/", views.logs_download, name="logs_download"),
    path("containers/<int:pk>/terminal/token/", views.terminal_token, name="terminal_token"),
]
