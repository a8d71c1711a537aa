"""Berth's websocket consumers, one module each, on one base (``base.SocketConsumer``: the
session, object, permission and page-token checks, the close codes, bounded messages, the
heartbeat, and checking again when access changes). See docs/websockets.md."""

from console.live.consumers.containers import ContainersListConsumer
from console.live.consumers.engine_facts import EngineFactsConsumer
from console.live.consumers.events import EventsConsumer
from console.live.consumers.logs import LogsConsumer
from console.live.consumers.operation import OperationConsumer
from console.live.consumers.stats import StatsConsumer
from console.live.consumers.terminal import TerminalConsumer

__all__ = ["ContainersListConsumer", "EngineFactsConsumer", "EventsConsumer", "LogsConsumer",
           "OperationConsumer", "StatsConsumer", "TerminalConsumer"]
