"""How a container reads: its ``docker ps`` row (``summary``) and its ``docker inspect``
document, from its config and the state ``Containers`` found true."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from engine.containers.inputs import parse_time
from engine.containers.state import UNSUPERVISED_ERROR, ZERO_TIME

if TYPE_CHECKING:
    from engine.containers.manager import Container, Containers


def age(stamp: str) -> str:
    if not stamp or stamp.startswith("0001"):
        return ""
    then = parse_time(stamp)
    seconds = max(0, int(time.time() - then))
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size * 2:
            return f"{seconds // size} {unit}"
    if seconds >= 60:
        return "About a minute"
    return f"{seconds} seconds" if seconds > 1 else "Less than a second"


def summary(containers: Containers, container: Container) -> dict:
    state = container.state
    if container.status == "running":
        status = f"Up {age(state.get('StartedAt', ''))}"
    elif container.status == "paused":
        status = f"Up {age(state.get('StartedAt', ''))} (Paused)"
    elif container.status == "restarting":
        status = f"Restarting ({state.get('ExitCode', 0)}) {age(state.get('FinishedAt', ''))} ago"
    elif container.status == "exited":
        status = f"Exited ({state.get('ExitCode', 0)}) {age(state.get('FinishedAt', ''))} ago"
    else:
        status = container.status.capitalize()
    unsupervised = containers.unsupervised(container)
    if unsupervised:
        status += " (unsupervised)"
    args = [container.config["Path"]] + container.config["Args"]
    return {
        "Id": container.id,
        "Names": ["/" + container.name],
        "Image": container.config["Config"]["Image"],
        "ImageID": container.config["Image"],
        "Command": " ".join(args),
        "Created": int(parse_time(container.config["Created"])),
        "State": container.status,
        "Status": status,
        "Labels": container.config["Config"].get("Labels") or {},
        "Error": state.get("Error", ""),
        "Unsupervised": unsupervised,
    }

def inspect(containers: Containers, container: Container) -> dict:
    state = container.state
    status = container.status
    data = {k: v for k, v in container.config.items() if k != "Rootfs"}
    data["State"] = {
        "Status": status,
        "Running": status in ("running", "paused"),
        "Paused": status == "paused",
        "Restarting": status == "restarting",
        "OOMKilled": bool(state.get("OOMKilled")),
        "Dead": status == "dead",
        "Pid": state.get("Pid", 0) if status in ("running", "paused") else 0,
        "ExitCode": state.get("ExitCode", 0),
        "Error": state.get("Error", ""),
        "StartedAt": state.get("StartedAt", ZERO_TIME),
        "FinishedAt": state.get("FinishedAt", ZERO_TIME),
        # Berth's: the monitor is gone while the container runs (see ``unsupervised``).
        "Unsupervised": containers.unsupervised(container),
    }
    if data["State"]["Unsupervised"] and not data["State"]["Error"]:
        data["State"]["Error"] = UNSUPERVISED_ERROR
    data["RestartCount"] = state.get("RestartCount", 0)
    data["NetworkSettings"] = containers.networks.settings(container.id)
    data["GraphDriver"] = {"Data": {"MergedDir": container.config.get("Rootfs")}}
    return data
