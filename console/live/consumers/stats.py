"""One container's stats over a websocket, once a second."""

from __future__ import annotations

import asyncio

from console.live import protocol as p
from console.live.consumers.base import ContainerConsumer
from engine.errors import EngineError, NotFound


class StatsConsumer(ContainerConsumer):
    """CPU %, memory, network and block IO of one container, once a second."""

    interval = 1.0

    async def ready(self):
        self.spawn(self.sample_loop())

    async def sample_loop(self):
        previous = None
        state = None
        ref = self.container.container_id
        while True:
            try:
                current = await asyncio.to_thread(self.driver.stats_sample, ref)
            except NotFound:
                await self.send_info(t="state", status="removed", running=False)
                await self.close_with(p.CLOSE_NOT_FOUND)
                return
            except (EngineError, OSError):
                previous = None
                try:
                    now = await asyncio.to_thread(self.driver.container_state, ref)
                except NotFound:
                    await self.send_info(t="state", status="removed", running=False)
                    await self.close_with(p.CLOSE_NOT_FOUND)
                    return
                if now != state:
                    state = now
                    await self.send_info(t="state", **now)
                await asyncio.sleep(2 * self.interval)
                continue
            if state is None or not state.get("running"):
                state = {"status": "running", "running": True, "exit_code": 0}
                await self.send_info(t="state", **state)
            if previous is not None:
                await self.send_info(t="stats", **self.driver.stats_summary(current, previous))
            previous = current
            await asyncio.sleep(self.interval)

