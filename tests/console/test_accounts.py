"""Users & Teams pages, from each side: the administrator who manages, the team
leader who manages their own team's members, the member and the outsider who
may not. Escalation attempts fail and change nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from console.access import catalog
from console.access.matrix import render_markdown
from console.access.models import Assignment, Role
from console.access.roles import builtin_role, grant
from console.accounts.models import Membership, Team
from console.core.models import Environment

pytestmark = pytest.mark.django_db


User = get_user_model()
ROOT = Path(__file__).resolve().parents[2]
GOOD_PASSWORD = "a long enough passphrase 42"


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


@pytest.fixture
def staging():
    return Environment.objects.create(name="staging")


def make_user(name, **extra):
    return User.objects.create_user(name, **extra)


def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def web(local):
    """Team web: lena leads it, mo is a member; the team holds Standard user in local."""
    lena, mo = make_user("lena"), make_user("mo")
    team = Team.objects.create(name="web")
    Membership.objects.create(team=team, user=lena, is_leader=True)
    Membership.objects.create(team=team, user=mo)
    grant(team, "standard", local)
    return team


def test_admin_creates_a_user_who_can_then_sign_in(admin_client):
    client = Client()
    response = admin_client.post(reverse("user_create"), {"username": "nina", "email": "n@example.com",
                                                         "password": GOOD_PASSWORD})
    nina = User.objects.get(username="nina")
    assert response.status_code == 302 and response["Location"] == reverse("user_detail", args=[nina.pk])
    assert not nina.is_superuser
    assert "nina" in admin_client.get(reverse("users")).content.decode()
    assert client.post("/login/", {"username": "nina", "password": GOOD_PASSWORD}).status_code == 302


@pytest.mark.parametrize("password", ["short", "password123", "1234567890123"])
def test_weak_passwords_are_refused(admin_client, password):
    response = admin_client.post(reverse("user_create"), {"username": "weak", "password": password})
    assert response.status_code == 400 and 'class="field-error"' in response.content.decode()
    assert not User.objects.filter(username="weak").exists()


def test_admin_disables_resets_and_promotes(admin_client, admin):
    client = Client()
    nina = User.objects.create_user("nina", password=GOOD_PASSWORD)
    url = reverse("user_detail", args=[nina.pk])
    admin_client.post(url, {"form": "account", "email": "", "is_active": "", "is_superuser": ""})
    nina.refresh_from_db()
    assert not nina.is_active
    response = client.post("/login/", {"username": "nina", "password": GOOD_PASSWORD})
    assert "Wrong username or password." in response.content.decode()
    admin_client.post(url, {"form": "account", "is_active": "on", "is_superuser": "on"})
    admin_client.post(url, {"form": "password", "password": "another passphrase 77"})
    nina.refresh_from_db()
    assert nina.is_active and nina.is_superuser and nina.check_password("another passphrase 77")


def test_the_last_administrator_cannot_be_demoted_or_disabled(admin_client, admin):
    response = admin_client.post(reverse("user_detail", args=[admin.pk]), {"form": "account", "is_active": "on"})
    assert response.status_code == 400 and "last active administrator" in response.content.decode()
    admin.refresh_from_db()
    assert admin.is_superuser


def test_team_with_members_and_a_role_shows_in_effective_access(admin_client, local):
    nina = make_user("nina")
    admin_client.post(reverse("team_create"), {"name": "ops", "description": "on call"})
    team = Team.objects.get(name="ops")
    admin_client.post(reverse("team_add_member", args=[team.pk]), {"user": "nina"})
    operator = builtin_role("operator")
    response = admin_client.post(reverse("assignment_create"), {
        "team": team.pk, "role": operator.pk, "environment": local.pk, "next": reverse("team_detail", args=[team.pk])})
    assert response["Location"] == reverse("team_detail", args=[team.pk])
    page = admin_client.get(reverse("effective_access"), {"user": nina.pk}).content.decode()
    assert "Operator</strong> through team" in page and 'data-permission="containers.operate"' in page
    assert "Operator through team ops" in page
    assert "the union applies" in page
    assert 'data-permission="containers.remove"' not in page


def test_roles_page_publishes_the_matrix_with_custom_roles(admin_client, local):
    client = Client()
    admin_client.post(reverse("role_create"), {"name": "Log reader", "scope": "environment",
                                               "permissions": ["containers.view", "containers.logs"]})
    role = Role.objects.get(name="Log reader")
    assert role.permissions == {"containers.view", "containers.logs"}
    html = admin_client.get(reverse("roles")).content.decode()
    for spec in catalog.BUILTIN_ROLES:
        assert spec.name in html
    assert "Log reader" in html and "the union applies" in html
    assert html.count('data-permission="') == len(catalog.PERMISSIONS)
    # Everyone with a role may read the matrix; only administrators may change roles.
    reader = make_user("reader")
    assert signed_in(client, reader).get(reverse("roles")).status_code == 403  # no role: no matrix
    Assignment.objects.create(user=reader, role=builtin_role("read-only"), environment=local)
    html = client.get(reverse("roles")).content.decode()
    assert "Log reader" in html and "Add custom role" not in html


def test_docs_roles_md_is_the_generated_matrix():
    assert (ROOT / "docs" / "roles.md").read_text() == render_markdown(), \
        "run: python -m console.access.matrix > docs/roles.md"


def test_builtin_roles_cannot_be_edited_or_deleted(admin_client):
    role = builtin_role("read-only")
    assert admin_client.get(reverse("role_edit", args=[role.pk])).status_code == 404
    admin_client.post(reverse("role_delete", args=[role.pk]))
    assert Role.objects.filter(pk=role.pk).exists()


# The team leader

def test_leader_adds_and_removes_plain_members_of_their_team(client, web):
    lena = User.objects.get(username="lena")
    newcomer = make_user("newcomer")
    signed_in(client, lena)
    page = client.get(reverse("team_detail", args=[web.pk])).content.decode()
    assert 'data-testid="add-member"' in page
    assert client.post(reverse("team_add_member", args=[web.pk]), {"user": "newcomer"}).status_code == 302
    assert Membership.objects.filter(team=web, user=newcomer, is_leader=False).exists()
    client.post(reverse("team_remove_member", args=[web.pk, newcomer.pk]))
    assert not Membership.objects.filter(team=web, user=newcomer).exists()


def test_leader_cannot_name_leaders_nor_give_roles(client, web, local):
    lena = User.objects.get(username="lena")
    make_user("friend")
    signed_in(client, lena)
    assert client.post(reverse("team_add_member", args=[web.pk]),
                       {"user": "friend", "leader": "on"}).status_code == 403
    assert not Membership.objects.filter(team=web, user__username="friend").exists()
    ea = builtin_role("environment-admin")
    assert client.post(reverse("assignment_create"), {"team": web.pk, "role": ea.pk,
                                                      "environment": local.pk}).status_code == 403
    assert not Assignment.objects.filter(role=ea).exists()


# Escalation attempts

def test_a_user_cannot_edit_their_own_role_or_flags(client, web, local):
    mo = User.objects.get(username="mo")
    signed_in(client, mo)
    ea = builtin_role("environment-admin")
    assert client.post(reverse("assignment_create"), {"user": mo.pk, "role": ea.pk,
                                                      "environment": local.pk}).status_code == 403
    own = Assignment.objects.get(team=web)
    assert client.post(reverse("assignment_delete", args=[own.pk])).status_code == 403
    assert client.post(reverse("user_detail", args=[mo.pk]),
                       {"form": "account", "is_active": "on", "is_superuser": "on"}).status_code == 403
    standard = builtin_role("standard")
    assert client.post(reverse("role_create"), {"name": "mine", "scope": "environment",
                                                "permissions": list(catalog.ASSIGNABLE)}).status_code == 403
    assert client.get(reverse("role_edit", args=[standard.pk])).status_code == 403
    mo.refresh_from_db()
    assert not mo.is_superuser and not Assignment.objects.filter(user=mo).exists()
    assert not Role.objects.filter(name="mine").exists()
    assert client.get(reverse("users")).status_code == 302  # to their own effective access
    assert client.get(reverse("user_create")).status_code == 403


def test_a_user_cannot_join_a_team_they_do_not_lead(client, web):
    mo = User.objects.get(username="mo")
    admins = Team.objects.create(name="admins")
    signed_in(client, mo)
    # Not in the team: it does not exist for them.
    assert client.post(reverse("team_add_member", args=[admins.pk]), {"user": "mo"}).status_code == 404
    assert client.get(reverse("team_detail", args=[admins.pk])).status_code == 404
    # In the team but not its leader: may not add anyone, nor make themselves leader.
    assert client.post(reverse("team_add_member", args=[web.pk]), {"user": "mo", "leader": "on"}).status_code == 403
    outsider = make_user("outsider")
    assert client.post(reverse("team_add_member", args=[web.pk]), {"user": "outsider"}).status_code == 403
    assert not Membership.objects.filter(user=outsider).exists()
    assert not Membership.objects.get(team=web, user=mo).is_leader
    assert not Membership.objects.filter(team=admins).exists()


def test_a_user_sees_only_their_own_effective_access(client, web, admin):
    mo = User.objects.get(username="mo")
    signed_in(client, mo)
    page = client.get(reverse("effective_access")).content.decode()
    assert "Effective access of mo" in page and "Standard user through team web" in page
    assert client.get(reverse("effective_access"), {"user": admin.pk}).status_code == 404


def test_the_outsider_sees_no_team_and_no_access(client, web, local):
    carol = make_user("carol")
    signed_in(client, carol)
    assert "web" not in client.get(reverse("teams")).content.decode()
    page = client.get(reverse("effective_access")).content.decode()
    assert "sees nothing in local" in page
    assert client.get(reverse("images")).status_code == 403
