"""The dashboard: counts by state, disk used by images, recent operations."""

import pytest
from django.urls import reverse

from console.core.models import Environment
from console.inventory.models import Container, Image, Volume
from console.operations.models import Operation

pytestmark = pytest.mark.django_db


def test_counts_disk_and_recent_operations(admin_client, admin):
    local = Environment.objects.get(name="local")
    for i, state in enumerate(["running", "running", "exited", "paused"]):
        Container.objects.create(environment=local, container_id=f"c{i}", name=f"c{i}", state=state)
    Image.objects.create(environment=local, image_id="sha256:a", name="a:1", size=3 * 1024 * 1024)
    Image.objects.create(environment=local, image_id="sha256:b", name="b:1", size=1024 * 1024)
    Volume.objects.create(environment=local, name="data", size=2 * 1024 * 1024)
    Volume.objects.create(environment=local, name="cache", size=None)  # not measured yet
    Operation.objects.create(environment=local, user=admin, username="admin", action="image.pull",
                             target_name="busybox:latest", state="succeeded")
    html = admin_client.get(reverse("dashboard")).content.decode()
    tile = html.split('data-testid="tile-containers"')[1].split("</a>")[0]
    assert '<span class="count">4</span>' in tile
    assert "2 running" in tile and "1 exited" in tile and "1 paused" in tile
    images = html.split('data-testid="tile-images"')[1].split("</a>")[0]
    assert '<span class="count">2</span>' in images and "4.0\xa0MB on disk" in images
    volumes = html.split('data-testid="tile-volumes"')[1].split("</a>")[0]
    assert '<span class="count">2</span>' in volumes and "2.0\xa0MB on disk" in volumes
    assert "image.pull" in html and "busybox:latest" in html


def test_other_environments_do_not_count(admin_client):
    other = Environment.objects.create(name="staging")
    Container.objects.create(environment=other, container_id="x", name="x", state="running")
    html = admin_client.get(reverse("dashboard")).content.decode()
    assert '<span class="count">0</span><span class="label">containers' in html
