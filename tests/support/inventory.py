"""The console's events follower for tests: started, and returned once it follows."""

from __future__ import annotations

import threading


def live_follower(environment, stop: threading.Event, timeout: float = 30.0):
    """An ``EnvironmentFollower`` of ``environment``, started and past its catch-up pass: its
    first call between two polls of the events log says it reads the log's new end, so a
    change made from now on reaches the mirror."""
    from console.inventory.follower import EnvironmentFollower

    follower = EnvironmentFollower(environment, stop)
    live = threading.Event()
    tick = follower._tick

    def ticking():
        live.set()
        return tick()

    follower._tick = ticking
    follower.start()
    if not live.wait(timeout):
        stop.set()
        follower.join(10)
        raise AssertionError(f"the follower of {environment} did not reach the live stream within {timeout}s")
    return follower
