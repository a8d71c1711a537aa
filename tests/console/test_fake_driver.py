"""The inventory mirror and the list pages follow what the engine reports, shown with the
fake driver (no engine, no root): what appears is listed, what changes is updated, what is
gone leaves the list."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.core.models import Environment
from console.inventory.reconcile import reconcile

pytestmark = pytest.mark.django_db


def test_the_images_page_lists_what_the_engine_reports(admin_client, fake_engine):
    fake_engine.add_image("shop/web:1.4", image_id="sha256:" + "a" * 64)
    reconcile(Environment.local(), "images")
    page = admin_client.get(reverse("images")).content.decode()
    assert "shop/web:1.4" in page
    fake_engine.images.clear()
    reconcile(Environment.local(), "images")
    assert "shop/web:1.4" not in admin_client.get(reverse("images")).content.decode()


def test_the_containers_page_follows_a_container_from_running_to_gone(admin_client, fake_engine):
    container = fake_engine.add_container("ledger", image="shop/ledger:2")
    reconcile(Environment.local(), "containers")
    response = admin_client.get(reverse("containers"))
    rows = {c.name: c for c in response.context["page"].object_list}
    assert rows["ledger"].state == "running" and rows["ledger"].image == "shop/ledger:2"
    container.update(State="exited", Status="Exited (3) 2 seconds ago")
    reconcile(Environment.local(), "containers")
    rows = {c.name: c for c in admin_client.get(reverse("containers")).context["page"].object_list}
    assert rows["ledger"].state == "exited" and rows["ledger"].exit_code == 3
    fake_engine.containers.clear()
    reconcile(Environment.local(), "containers")
    assert "ledger" not in {c.name for c in admin_client.get(reverse("containers")).context["page"].object_list}


def test_what_the_fake_does_not_do_says_so(fake_engine):
    from console.drivers import driver_for

    driver = driver_for(Environment.local())
    assert driver.facts()["runtime"] == "runc"
    with pytest.raises(NotImplementedError, match="does not start_container"):
        driver.start_container("ledger")
