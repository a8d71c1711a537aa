"""Every websocket path of the console (the consumers are in console.live.consumers)."""

from django.urls import path

from console.live import consumers

websocket_urlpatterns = [
    path("ws/engine-facts/", consumers.EngineFactsConsumer.as_asgi()),
    path("ws/operations/<uuid:operation_id>/", consumers.OperationConsumer.as_asgi()),
    path("ws/containers/<int:pk>/logs/", consumers.LogsConsumer.as_asgi()),
    path("ws/containers/<int:pk>/terminal/", consumers.TerminalConsumer.as_asgi()),
    path("ws/containers/<int:pk>/stats/", consumers.StatsConsumer.as_asgi()),
    path("ws/containers/live/", consumers.ContainersListConsumer.as_asgi()),
    path("ws/events/", consumers.EventsConsumer.as_asgi()),
]
