"""Sign-in protection: lockout with back-off, the same words whether or not the
name exists, and optional TOTP two-factor."""

from __future__ import annotations

import datetime as dt
import time

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from console.accounts import signin, twofactor
from console.accounts.models import SignInThrottle

pytestmark = pytest.mark.django_db


PASSWORD = "a long enough passphrase 42"


@pytest.fixture
def nina():
    return get_user_model().objects.create_user("nina", password=PASSWORD)


def attempt(client, username, password):
    return client.post("/login/", {"username": username, "password": password})


@pytest.mark.parametrize("username", ["nina", "nobody"])
def test_repeated_failures_lock_the_name_out_with_the_same_message(client, nina, username):
    for _ in range(signin.user_threshold()):
        assert "Wrong username or password." in attempt(client, username, "wrong").content.decode()
    locked = attempt(client, username, PASSWORD if username == "nina" else "wrong").content.decode()
    assert "Too many failed sign-ins. Try again in 30 seconds." in locked
    assert "_auth_user_id" not in client.session
    # Other names are not affected.
    assert attempt(client, "NINA2", "wrong").status_code == 200


def test_the_right_password_works_again_once_the_lock_expires_and_resets_the_count(client, nina):
    for _ in range(signin.user_threshold()):
        attempt(client, "nina", "wrong")
    SignInThrottle.objects.filter(key__endswith="nina").update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert attempt(client, "nina", PASSWORD).status_code == 302
    assert not SignInThrottle.objects.filter(key__startswith="pair:", key__endswith="|nina").exists()
    assert SignInThrottle.objects.get(key="user:nina").failures == 0


def test_back_off_doubles_and_is_capped():
    assert [signin.lock_seconds(n, 5) for n in (4, 5, 6, 7, 20)] == [0, 30, 60, 120, signin.MAX_LOCK_SECONDS]


def test_one_address_trying_many_names_is_locked_out(client):
    for i in range(signin.ip_threshold()):
        attempt(client, f"guess{i}", "wrong")
    assert "Too many failed sign-ins" in attempt(client, "another", "wrong").content.decode()


def enable_two_factor(user):
    device = twofactor.begin(user)
    code = pyotp.TOTP(twofactor.secret(device)).at(time.time() - 30)  # the previous step: still valid
    assert twofactor.confirm(device, code)
    return pyotp.TOTP(twofactor.secret(device))


def test_two_factor_asks_for_a_code_after_the_password(client, nina):
    totp = enable_two_factor(nina)
    response = attempt(client, "nina", PASSWORD)
    assert response["Location"] == reverse("login_code")
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302  # not signed in yet
    wrong = client.post(reverse("login_code"), {"code": "000000"})
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    assert client.post(reverse("login_code"), {"code": totp.now()})["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_code_works_only_once(nina):
    totp = enable_two_factor(nina)
    device = twofactor.device_of(nina)
    code = totp.now()
    assert twofactor.verify(device, code)
    assert not twofactor.verify(device, code)


def test_wrong_codes_count_towards_the_lockout(client, nina):
    enable_two_factor(nina)
    attempt(client, "nina", PASSWORD)
    for _ in range(signin.user_threshold()):
        client.post(reverse("login_code"), {"code": "000000"})
    assert "Too many failed sign-ins" in client.post(reverse("login_code"), {"code": "123456"}).content.decode()


def test_the_code_page_without_a_password_first_goes_back_to_sign_in(client):
    assert client.get(reverse("login_code"))["Location"] == reverse("login")


def test_turning_two_factor_on_and_off_from_the_page(client, nina):
    client.force_login(nina)
    client.post(reverse("two_factor"), {"action": "begin"})
    page = client.get(reverse("two_factor")).content.decode()
    assert 'data-testid="totp-secret"' in page and "otpauth://" in page
    totp = pyotp.TOTP(twofactor.secret(twofactor.device_of(nina)))
    assert client.post(reverse("two_factor"), {"action": "confirm", "code": "111111"}).status_code == 400
    client.post(reverse("two_factor"), {"action": "confirm", "code": totp.at(time.time() - 30)})
    assert twofactor.enabled(nina)
    client.post(reverse("two_factor"), {"action": "disable", "code": totp.now()})
    assert not twofactor.enabled(nina)
    assert twofactor.device_of(nina) is None


def test_an_administrator_turns_off_two_factor_for_a_user_who_lost_their_phone(admin_client, client, nina):
    enable_two_factor(nina)
    assert 'value="two_factor_off"' in admin_client.get(reverse("user_detail", args=[nina.pk])).content.decode()
    admin_client.post(reverse("user_detail", args=[nina.pk]), {"form": "two_factor_off"})
    assert not twofactor.enabled(nina)


def test_nobody_else_turns_off_someone_elses_two_factor(nina):
    from django.test import Client

    enable_two_factor(nina)
    other = Client()
    other.force_login(get_user_model().objects.create_user("mallory"))
    assert other.post(reverse("user_detail", args=[nina.pk]), {"form": "two_factor_off"}).status_code == 403
    assert twofactor.enabled(nina)


def test_a_threshold_of_zero_turns_that_lockout_off(client, settings):
    settings.SIGNIN_IP_THRESHOLD = 0
    for i in range(25):
        attempt(client, f"guess{i}", "wrong")
    assert "Too many failed sign-ins" not in attempt(client, "another", "wrong").content.decode()
    assert not SignInThrottle.objects.filter(key__startswith="ip:").exists()
