"""Make the mirror match the engine, idempotently.

Called after each operation, periodically by beat, and on engine events.
Changes made outside the console, with ``python -m engine``, show up the same way.
"""

from __future__ import annotations

import datetime
import re

from django.db import transaction
from django.utils.dateparse import parse_datetime

from console.drivers import driver_for
from console.inventory.models import Container, Image


def _sync(model, environment, key_field: str, wanted: dict[str, dict]) -> dict:
    """Create, update and delete ``model`` rows of ``environment`` so that they are ``wanted``
    (engine id -> field values), touching only rows that differ."""
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
    return _sync(Image, environment, "image_id", wanted)


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
    return _sync(Container, environment, "container_id", wanted)


RECONCILERS = {"images": reconcile_images, "containers": reconcile_containers}


def reconcile(environment, kind: str, driver=None) -> dict:
    return RECONCILERS[kind](environment, driver or driver_for(environment))
