"""The list filters take only what they mean. The label filter of the containers list and
of the merged logs page: the text names a
label (``key`` or ``key=value``), never an ORM lookup. ``k__regex=(a+)+$`` used to run the
user's regex in the database (a page frozen for everyone), ``k__contains=x`` was a 500."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console.core.models import Environment
from console.inventory.models import Container

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled():
    local = Environment.local()
    rows = {}
    for name, labels in [("plain", {"k": "a" * 8 + "!"}), ("literal", {"k__regex": "(a+)+$"}),
                         ("web", {"app": "web"}), ("db", {"app": "db", "k__contains": "x"})]:
        rows[name] = Container.objects.create(environment=local, container_id=name, name=name, state="running",
                                              labels=labels, search_text=name)
    return rows


def names_on(response):
    assert response.status_code == 200, response.status_code
    rows = response.context["page"].object_list if "page" in response.context else None
    return sorted(c.name for c in rows)


@pytest.mark.parametrize("label, expected", [
    ("app=web", ["web"]),
    ("app", ["db", "web"]),
    ("k__regex=(a+)+$", ["literal"]),  # the label named "k__regex", not a regex on "k"
    ("k__contains=x", ["db"]),
    ("k__contains", ["db"]),
    ("k__isnull=False", []),
    ("app__startswith=w", []),
    ("=web", []),
    ("k" * 600, []),
])
def test_the_containers_list_filters_by_label_names_only(admin_client, labelled, label, expected):
    assert names_on(admin_client.get(reverse("containers"), {"label": label})) == expected


@pytest.mark.parametrize("label, expected", [
    ("app=web", ["web"]), ("k__regex=(a+)+$", ["literal"]), ("k__contains=x", ["db"]), ("app__gt=a", []),
])
def test_the_merged_logs_page_filters_by_label_names_only(admin_client, labelled, label, expected):
    response = admin_client.get(reverse("merged_logs"), {"label": label})
    assert response.status_code == 200
    assert sorted(s["name"] for s in response.context["sources"]) == expected


def test_ids_past_the_databases_range_are_no_such_container(admin_client, labelled):
    response = admin_client.get(reverse("merged_logs"), {"container": ["9" * 25, "١", str(labelled["web"].pk)]})
    assert response.status_code == 200
    assert [s["name"] for s in response.context["sources"]] == ["web"]
    assert admin_client.get(f"/live/containers/{'9' * 25}/logs/download/").status_code == 404
    assert admin_client.get(f"/live/containers/{'9' * 25}/terminal/token/").status_code == 404


@pytest.mark.parametrize("url, field", [("container_bulk", "container"), ("image_remove", "image"),
                                        ("image_export", "image")])
def test_a_selection_that_is_not_row_ids_changes_nothing(admin_client, labelled, url, field):
    response = admin_client.post(reverse(url), {field: ["9" * 25, "x", "-1"], "verb": "stop"})
    assert response.status_code in (302, 400), response.status_code  # back to the list, or a clear refusal
    assert Container.objects.filter(name="web", state="running").exists()
