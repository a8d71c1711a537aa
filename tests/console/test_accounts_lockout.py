"""Nobody locks the administrator out from elsewhere (issue 12): failures lock the (name,
address) pair first, the name alone only at a much higher threshold; administrators are told
(an audit record and a banner) when a name is under attack."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from console.accounts import signin
from console.accounts.models import SignInThrottle
from console.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "a long enough passphrase 42"
LOCKED = "Too many failed sign-ins"


@pytest.fixture
def root():
    return get_user_model().objects.create_superuser("root", "", PASSWORD)


def attempt(username, password, address):
    return Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password})


def test_failures_from_one_address_do_not_lock_the_name_out_elsewhere(root):
    for _ in range(signin.user_threshold()):
        attempt("root", "wrong", "10.0.0.66")
    assert LOCKED in attempt("root", PASSWORD, "10.0.0.66").content.decode()  # the attacker's pair
    assert attempt("root", PASSWORD, "192.0.2.10").status_code == 302  # the administrator, elsewhere


def test_the_name_alone_locks_only_at_its_much_higher_threshold(root, settings):
    settings.SIGNIN_USER_THRESHOLD, settings.SIGNIN_NAME_THRESHOLD = 3, 12
    assert signin.name_threshold() == 12
    for address in range(4):  # 4 addresses x 3 failures: 12, the name-wide threshold
        for _ in range(3):
            attempt("root", "wrong", f"10.0.1.{address}")
    assert LOCKED in attempt("root", PASSWORD, "192.0.2.10").content.decode()
    row = SignInThrottle.objects.get(key="user:root")
    assert row.failures == 12 and row.locked_until is not None


def test_a_name_under_attack_is_audited_once_and_shown_to_administrators(root, settings):
    settings.SIGNIN_USER_THRESHOLD = 3  # under attack from 2 x 3 = 6 failures over several addresses
    for address in range(3):
        for _ in range(3):
            attempt("root", "wrong", f"10.0.2.{address}")
    (alert,) = AuditEvent.objects.filter(action="auth.name_under_attack")
    assert alert.outcome == "denied" and alert.target_name == "root"
    assert alert.details["failures"] == 6 and alert.details["addresses"] == 2
    admin = Client()
    admin.force_login(root)
    page = admin.get(reverse("dashboard")).content.decode()
    assert 'data-testid="sign-in-attack"' in page and "root" in page
    standard = Client()
    standard.force_login(get_user_model().objects.create_user("standard"))
    assert 'data-testid="sign-in-attack"' not in standard.get(reverse("dashboard")).content.decode()


def test_one_person_mistyping_is_no_attack(root):
    for _ in range(signin.user_threshold() + 3):
        attempt("root", "wrong", "192.0.2.10")
    assert not AuditEvent.objects.filter(action="auth.name_under_attack").exists()


def test_a_good_sign_in_clears_its_pair_and_the_name_count(root):
    for _ in range(2):
        attempt("root", "wrong", "192.0.2.10")
    assert attempt("root", PASSWORD, "192.0.2.10").status_code == 302
    assert not SignInThrottle.objects.filter(key__startswith="pair:").exists()
    assert SignInThrottle.objects.filter(key="user:root", failures=0).exists() or \
        not SignInThrottle.objects.filter(key="user:root").exists()


def test_behind_a_trusted_proxy_each_client_has_its_own_pair(root, settings):
    settings.BERTH_TRUSTED_PROXIES = ["127.0.0.1"]
    proxy = Client(REMOTE_ADDR="127.0.0.1")
    for _ in range(signin.user_threshold()):
        proxy.post("/login/", {"username": "root", "password": "wrong"}, HTTP_X_FORWARDED_FOR="203.0.113.9")
    locked = proxy.post("/login/", {"username": "root", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert LOCKED in locked.content.decode()
    mine = proxy.post("/login/", {"username": "root", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert mine.status_code == 302
