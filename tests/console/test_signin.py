"""Signing in and out, from the user's side."""

import pytest
from django.urls import reverse

from tests.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.django_db


def test_pages_send_strangers_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"
    assert client.get("/containers/").status_code == 302


def test_sign_in_lands_on_the_dashboard_with_the_user_shown(client, admin):
    response = client.post("/login/", {"username": "admin", "password": ADMIN_PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert b'data-testid="signed-in-user">admin' in response.content


@pytest.mark.parametrize("username", ["admin", "nobody"])
def test_wrong_password_gives_one_message_that_does_not_tell_if_the_user_exists(client, admin, username):
    response = client.post("/login/", {"username": username, "password": "wrong"})
    assert response.status_code == 200
    assert "Wrong username or password." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_disabled_user_gets_the_same_message(client, django_user_model):
    django_user_model.objects.create_user("gone", password=ADMIN_PASSWORD, is_active=False)
    response = client.post("/login/", {"username": "gone", "password": ADMIN_PASSWORD})
    assert "Wrong username or password." in response.content.decode()


def test_sign_out_needs_post_and_ends_the_session(admin_client):
    assert admin_client.get("/").status_code == 200
    response = admin_client.post("/logout/")
    assert response.status_code == 302
    assert admin_client.get("/").status_code == 302


def test_sign_in_never_redirects_off_site(client, admin):
    response = client.post(
        "/login/?next=https://evil.example/", {"username": "admin", "password": ADMIN_PASSWORD,
                                               "next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard")
