from django.urls import path

from console.live import consumers

websocket_urlpatterns = [
    path("ws/containers/<int:pk>/logs/", consumers.LogsConsumer.as_asgi()),
    path("ws/containers/<int:pk>/terminal/", consumers.TerminalConsumer.as_asgi()),
    path("ws/containers/<int:pk>/stats/", consumers.StatsConsumer.as_asgi()),
    path("ws/containers/live/", consumers.ContainersListConsumer.as_asgi()),
    path("ws/events/", consumers.EventsConsumer.as_asgi()),
]
