"""Building an image from a Dockerfile written in the page (and from an uploaded context),
with the output kept on the operation, then running it."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from console.core.models import Environment
from console.inventory.models import Image
from console.operations.models import Operation
from tests.support.worker import wait_for_operation

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def local(console_engine):
    return Environment.local()


def operation_from(response):
    assert response.status_code == 302, response.content.decode()[-3000:]
    return wait_for_operation(Operation.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[-1]),
                              timeout=120)


def test_build_from_a_dockerfile_in_the_page(admin_client, celery_worker, local):
    dockerfile = 'FROM test/busybox:latest\nRUN echo "made in the console" > /made\nCMD ["cat", "/made"]\n'
    op = operation_from(admin_client.post(reverse("image_build"), {"tags": "built/page:1", "dockerfile": dockerfile}))
    assert op.state == "succeeded", op.error + "\n".join(op.progress.get("lines", []))
    assert any("RUN" in line for line in op.progress["lines"])
    assert Image.objects.filter(environment=local, name="built/page:1").exists()
    page = admin_client.get(reverse("operation_detail", args=[op.pk])).content.decode()
    assert "Built built/page:1" in page


def test_build_with_an_uploaded_context(admin_client, celery_worker, local):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, content in {"Dockerfile": b"FROM test/busybox:latest\nCOPY hello.txt /hello.txt\n",
                              "hello.txt": b"from the context\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    upload = SimpleUploadedFile("context.tar", data.getvalue(), content_type="application/x-tar")
    op = operation_from(admin_client.post(reverse("image_build"), {"tags": "built/context:1", "context": upload}))
    assert op.state == "succeeded", op.error
    assert not Path(op.parameters["work"]).exists()  # nothing of this build left behind


def test_a_bad_dockerfile_is_an_inline_error_naming_the_line(admin_client, local):
    # The service reads the Dockerfile (for the images it names) before anything is queued.
    response = admin_client.post(reverse("image_build"), {
        "tags": "built/bad:1", "dockerfile": "FROM test/busybox:latest\nFROBNICATE now\n"})
    assert response.status_code == 400
    assert "Dockerfile:2: unknown instruction: FROBNICATE" in response.content.decode()
    assert not Operation.objects.exists()


def test_bad_tags_and_nothing_to_build_are_inline_errors(admin_client, local):
    bad_tag = admin_client.post(reverse("image_build"), {"tags": "Bad:Tag!", "dockerfile": "FROM scratch\n"})
    assert bad_tag.status_code == 400
    empty = admin_client.post(reverse("image_build"), {"tags": "x:1", "dockerfile": ""})
    assert empty.status_code == 400 and "Write a Dockerfile" in empty.content.decode()
    assert not Operation.objects.exists()
