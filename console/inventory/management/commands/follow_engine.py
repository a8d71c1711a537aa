"""Follow the engines' events and keep the mirror in step (see console.inventory.follower)."""

import signal
import threading

from django.core.management.base import BaseCommand

from console.inventory.follower import follow_all


class Command(BaseCommand):
    help = "Follow every environment's engine events, reconcile the mirror and tell live pages."

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        followers = follow_all(stop)
        self.stdout.write(f"following {len(followers)} environment(s)")
        while not stop.wait(1):
            pass
        for follower in followers:
            follower.join(timeout=5)
