"""Websocket consumers of the core app.

Close codes used by every Berth consumer (documented in docs/websockets.md):
4401 not signed in, 4403 not allowed, 4404 no such object, 4400 bad message.
"""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_BAD_MESSAGE = 4400


class EngineFactsConsumer(AsyncJsonWebsocketConsumer):
    """Streams the engine facts a worker reports for the current environment."""
