"""Follow each environment's engine events: reconcile the mirror soon after a change
(whoever made it: the console, the CLI, a restart policy) and tell the pages.

Run by the launcher as its own process (``manage.py follow_engine``). Reconciles
are debounced so that a burst of events costs one pass. Every event is also
published to the channel-layer group ``engine-events.<environment id>`` as
``{"type": "engine.event", "event": {...}}`` for live pages.
"""

from __future__ import annotations

import logging
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import close_old_connections

from console.drivers import driver_for
from console.drivers.base import EngineUnreachable
from console.inventory.reconcile import reconcile

log = logging.getLogger(__name__)

KIND_OF_TYPE = {"container": "containers", "image": "images", "volume": "volumes", "network": "networks"}
DEBOUNCE_SECONDS = 0.3


def events_group(environment) -> str:
    return f"engine-events.{environment.pk}"


class EnvironmentFollower(threading.Thread):
    def __init__(self, environment, stop: threading.Event):
        super().__init__(name=f"follow-{environment.name}", daemon=True)
        self.environment = environment
        self.stop_event = stop
        self.pending: set[str] = set()
        self.due = 0.0

    def run(self) -> None:
        driver = driver_for(self.environment)
        layer = get_channel_layer()
        while not self.stop_event.is_set():
            try:
                # A catch-up pass first: changes made while nobody followed.
                for kind in KIND_OF_TYPE.values():
                    reconcile(self.environment, kind, driver)
                for event in driver.follow_events(stop=self._tick):
                    self._note(event)
                    async_to_sync(layer.group_send)(events_group(self.environment),
                                                    {"type": "engine.event", "event": event})
            except EngineUnreachable as exc:  # no engine to follow yet: the rows stay as they are
                log.warning("following %s paused: %s; retrying", self.environment, exc)
                self.stop_event.wait(5)
            except Exception:
                log.exception("following %s failed; retrying", self.environment)
                self.stop_event.wait(2)
            finally:
                close_old_connections()

    def _note(self, event: dict) -> None:
        kind = KIND_OF_TYPE.get(event.get("Type", ""))
        if kind:
            self.pending.add(kind)
            self.due = time.monotonic() + DEBOUNCE_SECONDS

    def _tick(self) -> bool:
        """Called between polls: run due reconciles; True ends the follow."""
        if self.pending and time.monotonic() >= self.due:
            kinds, self.pending = self.pending, set()
            for kind in kinds:
                reconcile(self.environment, kind)
        return self.stop_event.is_set()


def follow_all(stop: threading.Event) -> list[EnvironmentFollower]:
    from console.core.models import Environment

    followers = [EnvironmentFollower(env, stop) for env in Environment.objects.all()]
    for follower in followers:
        follower.start()
    return followers
