from django.urls import path

from console.core import consumers

websocket_urlpatterns = [
    path("ws/engine-facts/", consumers.EngineFactsConsumer.as_asgi()),
]
