"""Volumes and networks through the console, and a container that publishes a port and
mounts a named volume. Real worker, Redis, engine, runc; traffic only to loopback."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from django.urls import reverse

from console.core.models import Environment
from console.inventory.models import Container, Network, Volume
from console.inventory.reconcile import reconcile
from console.operations.models import Operation
from engine.containers.manager import Containers
from engine.volumes import Volumes
from tests.support.networks import remove_all
from tests.support.services import free_port
from tests.support.worker import wait_for_operation, wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="module")
def engine(console_engine):
    yield console_engine
    remove_all(Containers(console_engine))  # containers first: volumes in use cannot go
    for volume in Volumes(console_engine).list():
        if volume["Name"].startswith("cv-"):
            Volumes(console_engine).remove(volume["Name"], force=True)


@pytest.fixture
def local(engine):
    environment = Environment.local()
    reconcile(environment, "images")
    return environment


def operation_from(response):
    assert response.status_code == 302, response.content.decode()[-3000:]
    return wait_for_operation(Operation.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[-1]))


def test_volume_create_use_keep_and_remove(admin_client, celery_worker, local):
    op = operation_from(admin_client.post(reverse("volumes"), {"name": "cv-data", "labels": "app=demo"}))
    assert op.state == "succeeded", op.error
    volume = Volume.objects.get(environment=local, name="cv-data")
    assert volume.labels == {"app": "demo"}

    run = operation_from(admin_client.post(reverse("container_create"), {
        "image": "test/busybox:latest", "name": "writer", "network": "none", "restart": "no", "start": "on",
        "command": "sh -c 'echo kept > /data/file; sleep 300'", "volumes": "cv-data:/data"}))
    assert run.state == "succeeded", run.error
    volume.refresh_from_db()
    assert [c["Name"] for c in volume.containers] == ["writer"]

    # In use: removal is refused with the engine's words; the data is untouched.
    refused = operation_from(admin_client.post(reverse("volume_remove", args=[volume.pk])))
    assert refused.state == "failed" and "in use" in refused.error
    writer = Container.objects.get(environment=local, name="writer")
    operation_from(admin_client.post(reverse("container_action", args=[writer.pk, "remove"]), {"force": "on"}))
    detail = admin_client.get(reverse("volume_detail", args=[volume.pk])).content.decode()
    assert "no container: removing it is allowed" in detail

    # The data outlived its container: the next one reads it.
    read = operation_from(admin_client.post(reverse("container_create"), {
        "image": "test/busybox:latest", "name": "reader", "network": "none", "restart": "no", "start": "on",
        "command": "sh -c 'cat /data/file; sleep 300'", "volumes": "cv-data:/data:ro"}))
    assert read.state == "succeeded", read.error
    reader = Container.objects.get(environment=local, name="reader")
    for _ in range(50):
        if "kept" in admin_client.get(reverse("container_detail", args=[reader.pk])).content.decode():
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the second container did not read the volume's data")
    operation_from(admin_client.post(reverse("container_action", args=[reader.pk, "remove"]), {"force": "on"}))
    removed = operation_from(admin_client.post(reverse("volume_remove", args=[volume.pk])))
    assert removed.state == "succeeded", removed.error
    assert not Volume.objects.filter(pk=volume.pk).exists()


@pytest.mark.parametrize("name,message", [("a/b", "no slash"), ("-x", "no slash")])
def test_bad_volume_names_are_refused_inline(admin_client, local, name, message):
    response = admin_client.post(reverse("volumes"), {"name": name})
    assert response.status_code == 400 and message in response.content.decode()
    assert not Operation.objects.exists()


def test_network_create_publish_a_port_and_remove(admin_client, celery_worker, local):
    op = operation_from(admin_client.post(reverse("networks"), {"name": "cn-front"}))
    assert op.state == "succeeded", op.error
    network = Network.objects.get(environment=local, name="cn-front")
    assert network.subnet and network.driver == "bridge"

    port = free_port()
    run = operation_from(admin_client.post(reverse("container_create"), {
        "image": "test/busybox:latest", "name": "web", "network": "cn-front", "restart": "no", "start": "on",
        "command": "sh -c 'mkdir /www; echo hello over the bridge > /www/index.html; httpd -f -p 80 -h /www'",
        "ports": f"127.0.0.1:{port}:80"}))
    assert run.state == "succeeded", run.error
    body = ""
    for _ in range(50):
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
            break
        except OSError:
            time.sleep(0.1)
    assert "hello over the bridge" in body
    listing = admin_client.get(reverse("containers"), {"q": "web"}).content.decode()
    assert f":{port}/" in listing  # the published port is a link

    refused = operation_from(admin_client.post(reverse("network_remove", args=[network.pk])))
    assert refused.state == "failed"  # in use
    web = Container.objects.get(environment=local, name="web")
    operation_from(admin_client.post(reverse("container_action", args=[web.pk, "remove"]), {"force": "on"}))
    assert operation_from(admin_client.post(reverse("network_remove", args=[network.pk]))).state == "succeeded"


@pytest.mark.parametrize("fields,field,message", [
    ({"name": "bad name"}, "name", "Use letters"),
    ({"name": "cn-x", "subnet": "10.1.2.3/33"}, "subnet", "Not an IPv4 subnet"),
    ({"name": "cn-x", "gateway": "10.0.0.1"}, "gateway", "needs a subnet"),
    ({"name": "cn-x", "subnet": "10.213.9.0/24", "gateway": "10.1.1.1"}, "gateway", "inside"),
])
def test_bad_network_input_is_refused_inline(admin_client, local, fields, field, message):
    response = admin_client.post(reverse("networks"), fields)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Operation.objects.exists()


def test_ports_and_host_paths_are_checked_before_anything_runs(admin_client, local):
    bad_port = admin_client.post(reverse("container_create"), {
        "image": "test/busybox:latest", "network": "bridge", "restart": "no", "ports": "99999:80"})
    assert bad_port.status_code == 400 and "invalid" in bad_port.content.decode().lower()
    missing = admin_client.post(reverse("container_create"), {
        "image": "test/busybox:latest", "network": "bridge", "restart": "no", "volumes": "/no/such/path:/x"})
    assert missing.status_code == 400
    assert not Operation.objects.exists()


def test_the_periodic_pass_measures_volume_sizes(console_engine, local):
    from console.inventory.tasks import reconcile_all

    volumes = Volumes(console_engine)
    volumes.create("cv-measured")
    (Path(volumes.inspect("cv-measured")["Mountpoint"]) / "blob").write_bytes(b"x" * 100_000)
    reconcile(local, "volumes")
    assert Volume.objects.get(environment=local, name="cv-measured").size is None  # events pass: cheap
    reconcile_all()
    assert Volume.objects.get(environment=local, name="cv-measured").size >= 100_000


def test_a_detail_of_something_gone_from_the_engine_says_so_and_heals_the_list(admin_client, celery_worker, local):
    """Removed with `python -m engine` while the mirror still lists it (before any event)."""
    ghosts = [Volume.objects.create(environment=local, name="cv-ghost"),
              Network.objects.create(environment=local, network_id="f" * 64, name="cn-ghost", driver="bridge")]
    for row, page, label in ((ghosts[0], "volume_detail", "Volume cv-ghost"),
                             (ghosts[1], "network_detail", "Network cn-ghost")):
        response = admin_client.get(reverse(page, args=[row.pk]), follow=True)
        assert response.redirect_chain[-1][0] == reverse(page.replace("_detail", "s"))
        assert f"{label} is no longer on the engine." in response.content.decode()
        # the mirror is reconciled by a worker (the web process may not see the engine)
        wait_until(lambda row=row: not type(row).objects.filter(pk=row.pk).exists())
