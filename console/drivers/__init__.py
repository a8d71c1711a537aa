"""How the console reaches an engine: one driver per kind of environment.

Views, services and tasks never import ``engine`` directly; they ask
``driver_for(environment)``. A Docker Engine API driver or a remote Berth host
is a new class here, registered in ``DRIVERS``, with no change to the views.
"""

from console.drivers.base import EngineDriver
from console.drivers.local import LocalEngineDriver

DRIVERS: dict[str, type[EngineDriver]] = {"local": LocalEngineDriver}


def driver_for(environment) -> EngineDriver:
    try:
        driver_class = DRIVERS[environment.kind]
    except KeyError:
        raise ValueError(f"No driver for environments of kind {environment.kind!r}") from None
    return driver_class(environment)
