"""The base layout: menu, environment switcher, pages not built yet."""

import pytest

from console.core.models import Environment
from console.core.navigation import MENU, NOT_BUILT_YET

pytestmark = pytest.mark.django_db


def test_the_local_environment_exists_from_the_first_start():
    assert Environment.objects.filter(name="local", kind="local").exists()


def test_menu_lists_every_section(admin_client):
    html = admin_client.get("/").content.decode()
    for label in ["Dashboard", "Containers", "Images", "Registries", "Volumes", "Networks",
                  "Users &amp; Teams", "Audit log", "Settings"]:
        assert label in html
    assert 'aria-current="page"' in html


@pytest.mark.parametrize("url_name", NOT_BUILT_YET)
def test_pages_not_built_yet_say_so(admin_client, url_name):
    assert url_name in {item.url_name for item in MENU}
    response = admin_client.get(f"/{url_name}/")
    assert response.status_code == 200
    assert "This page is not built yet." in response.content.decode()


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
