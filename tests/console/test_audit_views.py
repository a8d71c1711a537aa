"""The audit log pages: who may read them, filters, seek pagination, detail, exports,
and the events that signing in and out leave."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.urls import reverse

from console import audit
from console.access.catalog import SCOPE_ENVIRONMENT
from console.access.models import Assignment, Role
from console.audit import chain
from console.audit.models import AuditEvent
from console.core.models import Environment
from tests.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


@pytest.fixture
def staging():
    return Environment.objects.create(name="staging")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="x" * 12)


def events_in(response) -> list[int]:
    html = response.content.decode()
    return [int(part.split('"', 1)[0]) for part in html.split('data-event="')[1:]]


def export(client, fmt, **params):
    response = client.get(reverse(f"audit_export_{fmt}"), params)
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content).decode()


def test_sign_in_failure_success_and_sign_out_each_leave_one_event(client, admin):
    client.post("/login/", {"username": "admin", "password": "wrong"}, HTTP_USER_AGENT="pytest-browser")
    client.post("/login/", {"username": "nobody", "password": "wrong"})
    client.post("/login/", {"username": "admin", "password": ADMIN_PASSWORD}, HTTP_USER_AGENT="pytest-browser")
    client.post("/logout/")
    events = list(AuditEvent.objects.filter(action__startswith="auth.").order_by("id"))
    assert [(e.action, e.outcome, e.actor_name) for e in events] == [
        ("auth.sign_in", "failed", "admin"), ("auth.sign_in", "failed", "nobody"),
        ("auth.sign_in", "succeeded", "admin"), ("auth.sign_out", "succeeded", "admin")]
    failed, unknown, signed_in, signed_out = events
    assert failed.actor_id is None and failed.details == {"known_user": True}
    assert unknown.details == {"known_user": False}
    assert "wrong" not in json.dumps([e.details for e in events])
    assert signed_in.actor_id == admin.pk and signed_out.actor_id == admin.pk
    assert (signed_in.source_ip, signed_in.user_agent) == ("127.0.0.1", "pytest-browser")
    assert signed_in.request_id and signed_in.request_id != failed.request_id


def test_administrators_read_everything(admin_client, admin, local):
    audit.record(user=admin, action="image.pull", environment=local)
    response = admin_client.get(reverse("audit"))
    assert response.status_code == 200
    assert 'data-testid="chain-status"' in response.content.decode()
    assert len(events_in(response)) == AuditEvent.objects.count()


def test_others_need_audit_view_and_see_only_its_environments(client, bob, admin, local, staging):
    here = audit.record(user=admin, action="image.pull", environment=local)
    there = audit.record(user=admin, action="image.pull", environment=staging)
    nowhere = audit.record(user=None, actor_name="x", action="auth.sign_in", outcome="failed")
    client.force_login(bob)
    assert client.get(reverse("audit")).status_code == 403
    assert client.get(reverse("audit_detail", args=[here.pk])).status_code == 403
    assert client.get(reverse("audit_export_csv")).status_code == 403

    role = Role.objects.create(name="Auditors", stored_permissions=["audit.view"], scope=SCOPE_ENVIRONMENT)
    Assignment.objects.create(role=role, user=bob, environment=local)
    visible = events_in(client.get(reverse("audit")))
    assert here.pk in visible and there.pk not in visible and nowhere.pk not in visible
    assert client.get(reverse("audit_detail", args=[here.pk])).status_code == 200
    assert client.get(reverse("audit_detail", args=[there.pk])).status_code == 404
    assert client.get(reverse("audit_detail", args=[nowhere.pk])).status_code == 404
    assert f'"id": {there.pk},' not in export(client, "jsonl")


def make_events(admin, local, staging, bob):
    base = [
        dict(user=admin, action="image.pull", environment=local, target_name="busybox:1", outcome="queued"),
        dict(user=bob, action="image.pull", environment=local, target_name="alpine:3", outcome="denied"),
        dict(user=admin, action="image.remove", environment=staging, target_name="busybox:1", outcome="failed",
             error="image is in use by container web"),
        dict(user=bob, action="registry.create", environment=local, target_name="team-registry"),
        dict(user=admin, action="imagery.odd", environment=local, target_name="x"),
    ]
    return [audit.record(**kwargs) for kwargs in base]


@pytest.mark.parametrize("params, expected", [
    ({"user": "bob"}, [1, 3]),
    ({"outcome": "failed"}, [2]),
    ({"action": "image"}, [0, 1, 2]),  # image and image.*, not imagery
    ({"action": "image.pull"}, [0, 1]),
    ({"target": "busybox"}, [0, 2]),
    ({"q": "Container WEB"}, [2]),
    ({"user": "admin", "action": "image", "outcome": "queued"}, [0]),
])
def test_filters(admin_client, admin, local, staging, bob, params, expected):
    made = make_events(admin, local, staging, bob)
    response = admin_client.get(reverse("audit"), params)
    assert sorted(events_in(response)) == sorted(made[i].pk for i in expected)


def test_filter_by_environment_team_and_dates(admin_client, admin, local, staging, bob):
    from console.accounts.models import Membership, Team

    made = make_events(admin, local, staging, bob)
    assert events_in(admin_client.get(reverse("audit"), {"environment": staging.pk})) == [made[2].pk]
    team = Team.objects.create(name="ops")
    Membership.objects.create(team=team, user=bob)
    assert sorted(events_in(admin_client.get(reverse("audit"), {"team": team.pk}))) == [made[1].pk, made[3].pk]
    today = made[0].time.date()
    assert len(events_in(admin_client.get(reverse("audit"), {"since": today.isoformat(),
                                                               "until": today.isoformat()}))) >= 5
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert events_in(admin_client.get(reverse("audit"), {"since": tomorrow})) == []


def test_htmx_filter_answers_with_the_rows_only(admin_client, admin, local):
    audit.record(user=admin, action="image.pull", environment=local)
    response = admin_client.get(reverse("audit"), {"action": "image"}, HTTP_HX_REQUEST="true",
                                HTTP_HX_TARGET="audit-rows")
    html = response.content.decode()
    assert "<tr data-event=" in html and "<form" not in html


def test_seek_pagination_walks_every_event_once_both_ways(admin_client, admin, local):
    for i in range(120):
        audit.record(user=admin, action="image.tag", environment=local, target_name=f"t{i}")
    wanted = list(AuditEvent.objects.filter(action="image.tag").order_by("-time", "-id").values_list("pk", flat=True))
    seen, pages, params = [], [], {"action": "image.tag"}
    response = admin_client.get(reverse("audit"), params)
    while True:
        ids = events_in(response)
        seen += ids
        pages.append(response)
        html = response.content.decode()
        if 'data-testid="older"' not in html:
            break
        cursor = html.split('data-testid="older"')[0].rsplit("before=", 1)[1].split('"')[0].split("&")[0]
        response = admin_client.get(reverse("audit"), {**params, "before": cursor})
    assert seen == wanted and [len(events_in(p)) for p in pages] == [50, 50, 20]
    # "Newer" from the last page comes back to the second one.
    html = pages[-1].content.decode()
    cursor = html.split('data-testid="newer"')[0].rsplit("after=", 1)[1].split('"')[0].split("&")[0]
    assert events_in(admin_client.get(reverse("audit"), {**params, "after": cursor})) == wanted[50:100]


def test_detail_shows_the_fields_the_chain_and_the_operation(admin_client, admin, local):
    event = audit.record(user=admin, action="image.remove", environment=local, target_type="image",
                         target_id="sha256:" + "a" * 64, target_name="busybox:latest", outcome="failed",
                         error="conflict: image is in use", details={"force": False, "password": "p4ss"})
    html = admin_client.get(reverse("audit_detail", args=[event.pk])).content.decode()
    for text in ("image.remove", "busybox:latest", "conflict: image is in use", event.hash, event.prev_hash,
                 "&quot;force&quot;: false", "[redacted]"):
        assert text in html
    assert "p4ss" not in html
    assert admin_client.get(reverse("audit_detail", args=[999999])).status_code == 404


def test_exports_match_the_filter_and_are_recorded(admin_client, admin, local, staging, bob):
    made = make_events(admin, local, staging, bob)
    text = export(admin_client, "csv", user="bob")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == [made[3].pk, made[1].pk]
    assert rows[1]["outcome"] == "denied" and rows[0]["action"] == "registry.create"
    lines = [json.loads(line) for line in export(admin_client, "jsonl", action="image").splitlines()]
    assert [line["id"] for line in lines] == [made[2].pk, made[1].pk, made[0].pk]
    assert lines[0]["error"] == "image is in use by container web" and lines[0]["environment_name"] == "staging"
    # Each exported line carries what its hash covers: a reader can check it.
    row = {**lines[0], "time": dt.datetime.fromisoformat(lines[0]["time"].replace("Z", "+00:00")),
           "operation_id": lines[0]["operation_id"] or None, "source_ip": lines[0]["source_ip"] or None}
    assert chain.compute_hash(row["prev_hash"], row) == row["hash"]
    exports = AuditEvent.objects.filter(action="audit.export").order_by("id")
    assert [e.details["format"] for e in exports] == ["csv", "jsonl"]
    assert exports[0].details["filters"] == {"user": "bob"}


def test_csv_cells_that_look_like_formulas_stay_text(admin_client, admin):
    audit.record(user=admin, action="image.pull", target_name="=HYPERLINK(\"http://x\")")
    rows = list(csv.DictReader(io.StringIO(export(admin_client, "csv", action="image"))))
    assert rows[0]["target_name"].startswith("'=")


def test_a_refused_post_is_recorded_even_when_the_view_checks_first(client, bob, local):
    client.force_login(bob)
    response = client.post(reverse("image_pull"), {"reference": "busybox"})
    assert response.status_code == 403
    denied = AuditEvent.objects.get(outcome="denied")
    assert (denied.action, denied.actor_name, denied.target_name) == ("http.image_pull", "bob", "/images/pull/")


def test_the_chain_status_shows_the_last_verify(admin_client, admin, local):
    from console.audit.tasks import run_verify

    audit.record(user=admin, action="image.pull", environment=local)
    assert "Chain not verified yet" in admin_client.get(reverse("audit")).content.decode()
    run_verify()
    assert "Chain intact" in admin_client.get(reverse("audit")).content.decode()


def test_verify_now_is_for_administrators(admin_client, bob, monkeypatch):
    from django.test import Client

    from console.audit import tasks

    client = Client()
    queued = []
    monkeypatch.setattr(tasks.verify_chain, "delay", lambda: queued.append(True))
    client.force_login(bob)
    assert client.post(reverse("audit_verify")).status_code == 403
    assert admin_client.post(reverse("audit_verify")).status_code == 302
    assert queued == [True]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_export_streams_under_asgi_without_reading_it_all_first(admin):
    """daphne serves ASGI: the export is an async iterator there, fetched chunk by chunk."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    from console.audit import views

    await sync_to_async(lambda: [audit.record(user=admin, action="image.tag", target_name=f"t{i}")
                                 for i in range(25)])()
    client = AsyncClient()
    await client.aforce_login(admin)
    original, views.EXPORT_CHUNK = views.EXPORT_CHUNK, 10
    try:
        response = await client.get(reverse("audit_export_jsonl"), {"action": "image.tag"})
        assert response.is_async
        lines = [json.loads(line) for chunk in [c async for c in response.streaming_content]
                 for line in chunk.decode().splitlines()]
    finally:
        views.EXPORT_CHUNK = original
    assert [line["target_name"] for line in lines] == [f"t{i}" for i in reversed(range(25))]
