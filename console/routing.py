from django.urls import path

from console.core import consumers
from console.live.routing import websocket_urlpatterns as live_websockets
from console.operations.consumers import OperationConsumer

websocket_urlpatterns = [
    path("ws/engine-facts/", consumers.EngineFactsConsumer.as_asgi()),
    path("ws/operations/<uuid:operation_id>/", OperationConsumer.as_asgi()),
    *live_websockets,
]
