"""The base layout: menu, environment switcher."""

import pytest
from django.urls import reverse

from console.core.models import Environment
from console.web.navigation import MENU

pytestmark = pytest.mark.django_db


def test_the_local_environment_exists_from_the_first_start():
    assert Environment.objects.filter(name="local", kind="local").exists()


def test_menu_lists_every_section(admin_client):
    html = admin_client.get("/").content.decode()
    for label in ["Dashboard", "Containers", "Images", "Registries", "Volumes", "Networks",
                  "Users &amp; Teams", "Audit log", "Settings"]:
        assert label in html
    assert 'aria-current="page"' in html


@pytest.mark.parametrize("item", MENU, ids=lambda item: item.url_name)
def test_every_menu_entry_is_a_real_page(admin_client, item):
    response = admin_client.get(reverse(item.url_name), follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "not built yet" not in html
    assert f'href="{reverse(item.url_name)}" aria-current="page"' in html


def menu_of(client) -> set[str]:
    html = client.get("/").content.decode()
    return {item.url_name for item in MENU if f'href="{reverse(item.url_name)}"' in html}


def test_the_menu_shows_what_a_user_may_open(admin_client, client, django_user_model):
    from console.access.models import Assignment
    from console.access.roles import builtin_role

    admin_only = [item for item in MENU if item.administrators_only]
    assert [item.url_name for item in admin_only] == ["settings"]
    assert menu_of(admin_client) == {item.url_name for item in MENU}
    nobody = django_user_model.objects.create_user("mo")
    client.force_login(nobody)
    assert menu_of(client) == {"dashboard", "users"}  # no role anywhere: their own access page
    assert client.get(reverse("settings")).status_code == 403
    assert client.get(reverse("containers")).status_code == 403  # hidden, and checked again
    Assignment.objects.create(user=nobody, role=builtin_role("helpdesk"), environment=Environment.local())
    assert menu_of(client) == {item.url_name for item in MENU} - {"settings", "audit"}


def test_environment_switcher_remembers_the_choice(admin_client):
    other = Environment.objects.create(name="staging")
    response = admin_client.post("/environment/", {"environment": other.pk, "next": "/images/"})
    assert response["Location"] == "/images/"
    html = admin_client.get("/").content.decode()
    assert f'<option value="{other.pk}" selected>staging</option>' in html


def test_environment_switcher_refuses_unknown_environments_and_foreign_redirects(admin_client):
    assert admin_client.post("/environment/", {"environment": 9999}).status_code == 404
    local = Environment.objects.get(name="local")
    response = admin_client.post("/environment/", {"environment": local.pk, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_static_files_are_vendored_not_from_a_cdn(admin_client):
    html = admin_client.get("/").content.decode()
    assert "/static/vendor/htmx/htmx-2.0.11.min.js" in html
    assert "/static/vendor/pico/pico-2.1.1.min.css" in html
    assert "https://" not in html and "http://" not in html
