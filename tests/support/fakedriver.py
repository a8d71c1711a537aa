"""An engine driver that answers from memory, for view and service tests that need what an
engine reports (its images, containers, volumes, networks, facts) but no engine: no runc,
no mounts, no root. ``tests/console/conftest.py``'s ``fake_engine`` fixture puts it behind
the ``local`` environment.

The test fills a ``FakeEngine`` with the engine's answers, shaped as the driver's base class
documents them. What the fake does not do (create, start, pull...) raises
NotImplementedError naming the method: such a test needs the real engine (``console_engine``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from console.drivers.base import EngineDriver
from engine.errors import NotFound


@dataclass
class FakeEngine:
    images: list[dict] = field(default_factory=list)
    containers: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    networks: list[dict] = field(default_factory=list)
    facts: dict = field(default_factory=lambda: {"runtime": "runc", "storage": "overlay"})

    def add_image(self, ref: str, image_id: str = "sha256:" + "1" * 64, **values) -> dict:
        image = {"id": image_id, "repo_tags": [ref], "repo_digests": [], "size": 1024,
                 "created": "2026-01-01T00:00:00Z", "platform": "linux/amd64", "layer_count": 1,
                 "labels": {}, **values}
        self.images.append(image)
        return image

    def add_container(self, name: str, container_id: str | None = None, image: str = "busybox:latest",
                      state: str = "running", **values) -> dict:
        container = {"Id": container_id or (name.encode().hex() * 64)[:64], "Names": [f"/{name}"],
                     "Image": image, "ImageID": "", "Command": "sh", "State": state,
                     "Status": "Up 1 minute" if state == "running" else "Exited (0) 1 minute ago",
                     "Created": 1767225600, "Ports": [], "Labels": {}, **values}
        self.containers.append(container)
        return container


def _find(items: list[dict], ref: str, *keys: str) -> dict:
    for item in items:
        for key in keys:
            value = item.get(key)
            if value == ref or (isinstance(value, list) and (ref in value or f"/{ref}" in value)):
                return item
    raise NotFound(f"no such object: {ref}")


def fake_driver_class(engine: FakeEngine) -> type[EngineDriver]:
    """A driver class (as ``console.drivers.DRIVERS`` holds them) whose drivers answer from
    ``engine``."""

    class FakeEngineDriver(EngineDriver):
        def facts(self) -> dict:
            return dict(engine.facts)

        def list_images(self) -> list[dict]:
            return [dict(i) for i in engine.images]

        def inspect_image(self, name_or_id: str) -> dict:
            return dict(_find(engine.images, name_or_id, "id", "repo_tags"))

        def list_containers(self) -> list[dict]:
            return [dict(c) for c in engine.containers]

        def inspect_container(self, ref: str) -> dict:
            return dict(_find(engine.containers, ref, "Id", "Names"))

        def container_state(self, ref: str) -> dict:
            state = _find(engine.containers, ref, "Id", "Names")["State"]
            return {"status": state, "running": state == "running"}

        def container_logs(self, ref: str, tail: int = 200) -> list[dict]:
            _find(engine.containers, ref, "Id", "Names")
            return []

        def list_volumes(self, size: bool = False) -> list[dict]:
            return [dict(v) for v in engine.volumes]

        def inspect_volume(self, name: str) -> dict:
            return dict(_find(engine.volumes, name, "Name"))

        def list_networks(self) -> list[dict]:
            return [dict(n) for n in engine.networks]

        def inspect_network(self, ref: str) -> dict:
            return dict(_find(engine.networks, ref, "Id", "Name"))

    def not_faked(name):
        def method(self, *args, **kwargs):
            raise NotImplementedError(f"the fake driver does not {name}: this test needs the real engine")
        return method

    # Whatever else the base class asks for (it grows with the console): not faked.
    for name in EngineDriver.__abstractmethods__ - set(vars(FakeEngineDriver)):
        setattr(FakeEngineDriver, name, not_faked(name))
    FakeEngineDriver.__abstractmethods__ = frozenset()
    return FakeEngineDriver
