"""The role matrix (Users & Teams > Roles) is for those who hold a role somewhere."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.core.models import Environment
from tests.support.access import grant

pytestmark = pytest.mark.django_db


def test_a_user_with_no_role_may_not_see_the_role_matrix(client, django_user_model):
    nobody = django_user_model.objects.create_user("nobody", password="x" * 12)
    client.force_login(nobody)
    assert client.get(reverse("roles")).status_code == 403
    assert reverse("roles") not in client.get(reverse("two_factor")).content.decode()  # no tab to it
    grant(nobody, "helpdesk", Environment.objects.create(name="elsewhere"))  # a role anywhere will do
    response = client.get(reverse("roles"))
    assert response.status_code == 200
    assert b"Operator" in response.content


def test_administrators_see_it(admin_client):
    assert admin_client.get(reverse("roles")).status_code == 200
