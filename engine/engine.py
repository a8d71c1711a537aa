"""The engine of one root: its stores, each made on first use and wired together once.

``Engine(config)`` is what a caller holds (the command line, the console's local driver,
tests): its image store refuses to remove an image a container uses, and its containers
use its image, layer, snapshot, network and volume stores. Nothing is opened before it is
needed (``ps`` or ``logs`` open no image store).
"""

from __future__ import annotations

from functools import cached_property

from engine.config import EngineConfig


class Engine:
    def __init__(self, config: EngineConfig, *, images=None):
        """``images``: an image store made already (the collector's), used instead of a new one."""
        self.config = config
        if images is not None:
            self.__dict__["images"] = self._guard(images)  # what the cached property would hold

    @cached_property
    def content(self):
        from engine.images.content import ContentStore

        return ContentStore(self.config)

    @cached_property
    def images(self):
        from engine.images.store import ImageStore

        return self._guard(ImageStore(self.config, self.content))

    def _guard(self, images):
        """``rmi`` refuses images that containers use (unless forced)."""
        images.add_in_use_check(lambda image_id: self.containers.in_use(image_id))
        return images

    @cached_property
    def layers(self):
        from engine.images.layers import LayerStore

        return LayerStore(self.config, self.content)

    @cached_property
    def snapshots(self):
        from engine.snapshots.snapshotter import Snapshotter

        return Snapshotter(self.config)

    @cached_property
    def containers(self):
        from engine.containers.manager import Containers

        return Containers(self.config, engine=self)

    @cached_property
    def networks(self):
        from engine.net.networks import Networks

        return Networks(self.config)

    @cached_property
    def volumes(self):
        from engine.volumes import Volumes

        return Volumes(self.config)
