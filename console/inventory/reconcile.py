"""Make the mirror match the engine, idempotently.

Called after each operation, periodically by beat, and on engine events: always in a
process that reaches the engine (the worker, the follower); a page asks a worker with
``console.inventory.tasks.request_reconcile``. Changes made outside the console, with
``python -m engine``, show up the same way.

A driver that cannot read the engine raises ``EngineUnreachable`` before anything is
compared: the pass aborts and every row and ownership record stays.
"""

from __future__ import annotations

import datetime
import re

from django.db import transaction
from django.utils.dateparse import parse_datetime

from console.access import ownership
from console.drivers import driver_for
from console.inventory.models import Container, Image, Network, Volume


def _sync(model, environment, key_field: str, wanted: dict[str, dict], kind: str) -> dict:
    """Create, update and delete ``model`` rows of ``environment`` so that they are ``wanted``
    (engine id -> field values), touching only rows that differ. What is gone from the
    engine also loses its ownership record (``kind``: "image", "container"...)."""
    fields = sorted({field for values in wanted.values() for field in values})
    with transaction.atomic():
        rows = {getattr(row, key_field): row for row in model.objects.filter(environment=environment)}
        create, update = [], []
        for key, values in wanted.items():
            row = rows.get(key)
            if row is None:
                create.append(model(environment=environment, **{key_field: key}, **values))
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                update.append(row)
        gone = [key for key in rows if key not in wanted]
        model.objects.bulk_create(create, batch_size=500)
        if update:
            model.objects.bulk_update(update, fields, batch_size=500)
        model.objects.filter(environment=environment, **{f"{key_field}__in": gone}).delete()
        for key in gone:
            ownership.forget(environment, kind, key)
    return {"created": len(create), "updated": len(update), "removed": len(gone)}


def _image_values(data: dict) -> dict:
    tags = data.get("repo_tags") or []
    return {
        "repo_tags": tags,
        "repo_digests": data.get("repo_digests") or [],
        "name": tags[0] if tags else "",
        "search_text": " ".join([*tags, data["id"]]).lower(),
        "size": data.get("size") or 0,
        "created": parse_datetime(data["created"]) if data.get("created") else None,
        "platform": data.get("platform") or "",
        "layer_count": data.get("layer_count") or 0,
        "labels": data.get("labels") or {},
    }


def reconcile_images(environment, driver) -> dict:
    wanted = {data["id"]: _image_values(data) for data in driver.list_images()}
    counts = _sync(Image, environment, "image_id", wanted, "image")
    # A name gone from every image loses its record: whoever puts it back holds it.
    ownership.forget_names(environment, {name for values in wanted.values()
                                         for name in [*values["repo_tags"], *values["repo_digests"]]})
    return counts


EXIT_STATUS = re.compile(r"^Exited \((-?\d+)\)")


def _container_values(data: dict) -> dict:
    name = (data.get("Names") or ["/"])[0].lstrip("/")
    match = EXIT_STATUS.match(data.get("Status", ""))
    created = data.get("Created")
    return {
        "name": name,
        "image": data.get("Image", ""),
        "image_id": data.get("ImageID", ""),
        "command": data.get("Command", ""),
        "state": data.get("State", ""),
        "status": data.get("Status", ""),
        "exit_code": int(match.group(1)) if match else None,
        "created": datetime.datetime.fromtimestamp(created, datetime.UTC) if created else None,
        "ports": data.get("Ports") or [],
        "labels": data.get("Labels") or {},
        "search_text": " ".join([name, data.get("Image", ""), data["Id"]]).lower(),
    }


def reconcile_containers(environment, driver) -> dict:
    wanted = {data["Id"]: _container_values(data) for data in driver.list_containers()}
    return _sync(Container, environment, "container_id", wanted, "container")


def _when(text):
    return parse_datetime(text) if text else None


def reconcile_volumes(environment, driver, sizes: bool = False) -> dict:
    """With ``sizes``, also measure each volume's disk use (the periodic pass does)."""
    wanted = {}
    for v in driver.list_volumes(size=sizes):
        labels = v.get("Labels") or {}
        wanted[v["Name"]] = {
            "driver": v.get("Driver", "local"), "mountpoint": v.get("Mountpoint", ""),
            "anonymous": bool(v.get("Anonymous")), "labels": labels,
            "containers": v.get("Containers") or [], "created": _when(v.get("CreatedAt")),
            "search_text": " ".join([v["Name"], *(f"{k}={val}" for k, val in labels.items())]).lower(),
        }
        if sizes:
            wanted[v["Name"]]["size"] = max((v.get("UsageData") or {}).get("Size", -1), 0)
    return _sync(Volume, environment, "name", wanted, "volume")


def reconcile_networks(environment, driver) -> dict:
    wanted = {}
    for n in driver.list_networks():
        ipam = ((n.get("IPAM") or {}).get("Config") or [{}])
        first = ipam[0] if ipam else {}
        wanted[n["Id"]] = {
            "name": n["Name"], "driver": n.get("Driver", ""), "subnet": first.get("Subnet", ""),
            "gateway": first.get("Gateway", ""), "internal": bool(n.get("Internal")),
            "builtin": bool(n.get("Builtin")), "labels": n.get("Labels") or {},
            "containers": n.get("Containers") or {}, "created": _when(n.get("Created")),
            "search_text": " ".join([n["Name"], n["Id"], first.get("Subnet", "")]).lower(),
        }
    return _sync(Network, environment, "network_id", wanted, "network")


RECONCILERS = {"images": reconcile_images, "containers": reconcile_containers,
               "volumes": reconcile_volumes, "networks": reconcile_networks}


def reconcile(environment, kind: str, driver=None, **options) -> dict:
    return RECONCILERS[kind](environment, driver or driver_for(environment), **options)
