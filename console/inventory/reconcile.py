"""Make the mirror match the engine, idempotently.

Called after each operation, periodically by beat, and (with containers) on
engine events. Changes made outside the console, with ``python -m engine``,
show up the same way.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.dateparse import parse_datetime

from console.drivers import driver_for
from console.inventory.models import Image

IMAGE_FIELDS = ["repo_tags", "repo_digests", "name", "search_text", "size", "created", "platform",
                "layer_count", "labels"]


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
    engine_images = {data["id"]: data for data in driver.list_images()}
    with transaction.atomic():
        rows = {row.image_id: row for row in Image.objects.filter(environment=environment)}
        create, update = [], []
        for image_id, data in engine_images.items():
            values = _image_values(data)
            row = rows.get(image_id)
            if row is None:
                create.append(Image(environment=environment, image_id=image_id, **values))
            elif any(getattr(row, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(row, key, value)
                update.append(row)
        gone = [image_id for image_id in rows if image_id not in engine_images]
        Image.objects.bulk_create(create, batch_size=500)
        Image.objects.bulk_update(update, IMAGE_FIELDS, batch_size=500)
        Image.objects.filter(environment=environment, image_id__in=gone).delete()
    return {"created": len(create), "updated": len(update), "removed": len(gone)}


RECONCILERS = {"images": reconcile_images}


def reconcile(environment, kind: str, driver=None) -> dict:
    return RECONCILERS[kind](environment, driver or driver_for(environment))


def register(kind: str, func) -> None:
    """Other kinds (containers, volumes, networks) add their reconciler here."""
    RECONCILERS[kind] = func
