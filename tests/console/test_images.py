"""Images through the console: pull (with and without registry credentials),
tag, remove, prune, and the mirror following the engine.

A real Celery worker (in-process thread), real Redis, the real engine and
Debian's docker-registry on loopback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from console.access.roles import grant
from console.core.models import Environment
from console.inventory.models import Image
from console.inventory.reconcile import reconcile
from console.operations.models import Operation
from console.registries.models import Registry
from engine.config import EngineConfig
from engine.distribution import transfer as distribution
from engine.distribution.credentials import Credentials
from engine.images.store import ImageStore
from tests.support.imagebuilder import busybox_image
from tests.support.worker import wait_for_operation

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def published(open_registry, auth_registry, tmp_path_factory):
    """busybox pushed to both registries from a store that is not the console's."""
    source = ImageStore(EngineConfig(root=tmp_path_factory.mktemp("source"), run_root=Path("/tmp")))
    busybox_image(source, ref="test/busybox:latest")
    distribution.push(source, "test/busybox:latest", f"{open_registry.host}/team/busybox:1.0")
    distribution.push(source, "test/busybox:latest", f"{auth_registry.host}/private/busybox:1.0",
                      credentials=Credentials("alice", "wonderland"))
    return {"open": f"{open_registry.host}/team/busybox:1.0",
            "private": f"{auth_registry.host}/private/busybox:1.0", "auth_host": auth_registry.host}


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


def engine_store():
    return ImageStore(EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT)))


def pull_through_page(client, reference, **extra):
    response = client.post(reverse("image_pull"), {"reference": reference, **extra})
    assert response.status_code == 302, response.content.decode()[:2000]
    return Operation.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[-1])


def test_pull_shows_progress_then_the_image_is_listed(admin_client, celery_worker, published, local):
    operation = wait_for_operation(pull_through_page(admin_client, published["open"]))
    assert operation.state == "succeeded", operation.error
    assert operation.username == "admin" and operation.action == "image.pull"
    layers = operation.progress["layers"]
    assert layers and all(layer["status"] in ("Download complete", "Already exists", "Pull complete")
                          or layer["current"] == layer["total"] for layer in layers.values())
    page = admin_client.get(reverse("operation_detail", args=[operation.pk])).content.decode()
    assert 'data-state="succeeded"' in page and "<progress" in page
    listing = admin_client.get(reverse("images"), {"q": "team/busybox"}).content.decode()
    assert f"{published['open']}" in listing


def test_pull_with_registry_credentials_never_shows_or_stores_the_secret(
        admin_client, celery_worker, published, local):
    response = admin_client.get(reverse("image_pull"))
    assert response.status_code == 200
    registry = Registry(name="private", kind="v2", host=published["auth_host"], username="alice")
    registry.set_secret("wonderland")
    registry.save()
    operation = wait_for_operation(pull_through_page(
        admin_client, "private/busybox:1.0", registry=registry.pk))
    assert operation.state == "succeeded", operation.error
    assert "wonderland" not in str(operation.parameters) + str(operation.result) + operation.error
    raw = Registry.objects.filter(pk=registry.pk).values_list("secret_encrypted", flat=True).get()
    assert "wonderland" not in raw and raw
    for url in (reverse("operation_detail", args=[operation.pk]), reverse("images"), reverse("image_pull")):
        assert "wonderland" not in admin_client.get(url).content.decode()


def test_pull_without_credentials_fails_with_the_registry_words(admin_client, celery_worker, published):
    operation = wait_for_operation(pull_through_page(admin_client, published["private"]))
    assert operation.state == "failed"
    assert "unauthorized" in operation.error.lower() or "authentication" in operation.error.lower()
    page = admin_client.get(reverse("operation_detail", args=[operation.pk])).content.decode()
    assert 'data-testid="operation-error"' in page


@pytest.mark.parametrize("reference", ["", "UPPER/Case", "busybox:bad tag", "x@sha256:123"])
def test_bad_reference_is_an_inline_error_and_enqueues_nothing(admin_client, reference):
    response = admin_client.post(reverse("image_pull"), {"reference": reference})
    assert response.status_code == 400
    assert 'class="field-error"' in response.content.decode()
    assert not Operation.objects.exists()


def test_viewer_sees_images_but_cannot_pull(client, django_user_model, local):
    viewer = django_user_model.objects.create_user("viewer", password="x" * 12)
    grant(viewer, "read-only", local)  # a user with no role sees nothing
    client.force_login(viewer)
    assert client.get(reverse("images")).status_code == 200
    assert b"Pull image" not in client.get(reverse("images")).content
    assert client.post(reverse("image_pull"), {"reference": "busybox"}).status_code == 403
    assert not Operation.objects.exists()


def test_tag_remove_and_prune(admin_client, celery_worker, published, local):
    wait_for_operation(pull_through_page(admin_client, published["open"]))
    image = Image.objects.get(environment=local, search_text__contains=published["open"].lower())

    response = admin_client.post(reverse("image_tag", args=[image.pk]), {"target": "berth/tagged:v1"})
    assert wait_for_operation(Operation.objects.get(action="image.tag")).state == "succeeded"
    assert response.status_code == 302
    image.refresh_from_db()
    assert "berth/tagged:v1" in image.repo_tags

    # Removing one tag keeps the image under its other name.
    admin_client.post(reverse("image_remove"), {"image": image.pk, "tag": "berth/tagged:v1"})
    assert wait_for_operation(Operation.objects.filter(action="image.remove").latest("created_at")).state == "succeeded"
    image.refresh_from_db()
    assert "berth/tagged:v1" not in image.repo_tags

    # Removing the image itself: refused while other names point at it (as docker rmi), then forced.
    image.refresh_from_db()
    if len(image.repo_tags) > 1:
        admin_client.post(reverse("image_remove"), {"image": image.pk})
        op = wait_for_operation(Operation.objects.filter(action="image.remove").latest("created_at"))
        assert op.state == "failed" and "must be forced" in op.error
    admin_client.post(reverse("image_remove"), {"image": image.pk, "force": "on"})
    op = wait_for_operation(Operation.objects.filter(action="image.remove").latest("created_at"))
    assert op.state == "succeeded", op.error
    assert not Image.objects.filter(pk=image.pk).exists()
    admin_client.post(reverse("image_prune"), {"all": "on"})
    prune = wait_for_operation(Operation.objects.get(action="image.prune"))
    assert prune.state == "succeeded" and "reclaimed_bytes" in prune.result


def test_mirror_follows_changes_made_with_the_cli(celery_worker, published, local):
    distribution.pull(engine_store(), published["open"])
    reconcile(local, "images")
    subprocess.run([sys.executable, "-m", "engine", "--root", settings.ENGINE_ROOT, "tag",
                    published["open"], "cli/made:here"], check=True, cwd=ROOT)
    reconcile(local, "images")
    reconcile(local, "images")  # idempotent
    tags = [t for row in Image.objects.filter(environment=local) for t in row.repo_tags]
    assert any(t.endswith("cli/made:here") for t in tags), tags
    subprocess.run([sys.executable, "-m", "engine", "--root", settings.ENGINE_ROOT, "rmi", "-f",
                    "cli/made:here", published["open"]], check=True, cwd=ROOT)
    reconcile(local, "images")
    assert not any(t.endswith("cli/made:here") for row in Image.objects.all() for t in row.repo_tags)
