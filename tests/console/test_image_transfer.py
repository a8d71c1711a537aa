"""Export images as a tar that docker load accepts, and import such a tar, through the console."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from console.core.models import Environment
from console.inventory.models import Image
from console.inventory.reconcile import reconcile
from console.operations.models import Operation
from engine.config import EngineConfig
from engine.images.store import ImageStore
from tests.support.imagebuilder import busybox_image
from tests.support.worker import wait_for_operation

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def local():
    store = ImageStore(EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT)))
    # labels of its own: an image id no other test shares (a container elsewhere may use busybox)
    busybox_image(store, ref="transfer/busybox:1", labels={"berth.test": "transfer"})
    environment = Environment.objects.get(name="local")
    reconcile(environment, "images")
    return environment


def operation_from(response):
    assert response.status_code == 302, response.content.decode()[-2000:]
    return wait_for_operation(Operation.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[-1]))


def test_export_then_import_round_trip(admin_client, celery_worker, local):
    image = Image.objects.get(environment=local, name="transfer/busybox:1")
    export = operation_from(admin_client.post(reverse("image_export"), {"image": [image.pk]}))
    assert export.state == "succeeded", export.error
    page = admin_client.get(reverse("operation_detail", args=[export.pk])).content.decode()
    assert 'data-testid="download-export"' in page

    response = admin_client.get(reverse("image_export_download", args=[export.pk]))
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert "manifest.json" in tar.getnames()  # what docker load reads

    # Remove it, then import the tar back: same image id and tag.
    admin_client.post(reverse("image_remove"), {"image": image.pk, "force": "on"})
    wait_for_operation(Operation.objects.filter(action="image.remove").latest("created_at"))
    assert not Image.objects.filter(image_id=image.image_id).exists()
    upload = SimpleUploadedFile("busybox.tar", data, content_type="application/x-tar")
    load = operation_from(admin_client.post(reverse("image_import"), {"archive": upload}))
    assert load.state == "succeeded", load.error
    restored = Image.objects.get(environment=local, image_id=image.image_id)
    assert "transfer/busybox:1" in restored.repo_tags
    assert not list((settings.DATA_DIR / "transfers").glob("upload-*"))  # the upload is not kept


def test_a_tar_that_is_not_an_image_archive_fails_clearly_and_keeps_nothing(admin_client, celery_worker, local):
    before = set(Image.objects.values_list("image_id", flat=True))
    upload = SimpleUploadedFile("junk.tar", b"this is not a tar" * 100)
    load = operation_from(admin_client.post(reverse("image_import"), {"archive": upload}))
    assert load.state == "failed" and load.error
    assert set(Image.objects.values_list("image_id", flat=True)) == before


def test_import_without_a_file_is_an_inline_error(admin_client, local):
    response = admin_client.post(reverse("image_import"), {})
    assert response.status_code == 400
    assert "Choose a tar file" in response.content.decode()
    assert not Operation.objects.exists()


def test_a_download_needs_the_export_permission(client, django_user_model, admin_client, celery_worker, local):
    image = Image.objects.get(environment=local, name="transfer/busybox:1")
    export = operation_from(admin_client.post(reverse("image_export"), {"image": [image.pk]}))
    client.force_login(django_user_model.objects.create_user("nobody", password="x" * 12))
    assert client.get(reverse("image_export_download", args=[export.pk])).status_code in (403, 404)


def test_old_exports_are_cleaned_up_and_recent_ones_kept():
    import os
    import time

    from console.images.services import transfers_dir
    from console.images.tasks import clean_transfers

    old = transfers_dir() / "export-old.tar"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    recent = transfers_dir() / "export-recent.tar"
    recent.write_bytes(b"x")
    assert "export-old.tar" in clean_transfers()
    assert not old.exists() and recent.exists()
    recent.unlink()
