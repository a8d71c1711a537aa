"""Registries through the console: add, edit, delete, test the credentials, browse
the catalog and tags, pull from a browsed tag; the secret never shown nor stored in clear.

A real Celery worker (in-process thread), real Redis, the real engine and
Debian's docker-registry on loopback (one open, one with alice/wonderland).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.apps import apps
from django.db import connection
from django.urls import reverse

from console.access.roles import grant
from console.core import crypto
from console.core.models import Environment
from console.inventory.models import Image
from console.operations.models import Operation
from console.registries import services
from console.registries.models import Registry, Repository
from engine.config import EngineConfig
from engine.distribution import transfer as distribution
from engine.distribution.credentials import Credentials
from engine.images.store import ImageStore
from tests.support.imagebuilder import busybox_image

pytestmark = pytest.mark.django_db
# Tests with the worker (a thread with its own connection) need committed rows.
with_worker = pytest.mark.django_db(transaction=True, serialized_rollback=True)
SECRET = "wonderland"


@pytest.fixture(scope="module")
def published(open_registry, auth_registry, tmp_path_factory):
    """Images pushed to both registries from a store that is not the console's."""
    source = ImageStore(EngineConfig(root=tmp_path_factory.mktemp("source"), run_root=Path("/tmp")))
    busybox_image(source, ref="test/busybox:latest")
    for target in ("team/busybox:1.0", "team/busybox:1.1", "tools/app:latest"):
        distribution.push(source, "test/busybox:latest", f"{open_registry.host}/{target}")
    distribution.push(source, "test/busybox:latest", f"{auth_registry.host}/private/busybox:1.0",
                      credentials=Credentials("alice", SECRET))
    return {"open": open_registry.host, "auth": auth_registry.host}


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


@pytest.fixture
def audit_log(caplog, monkeypatch):
    """Every log line (caplog) and every ``console.audit.record`` call (``.calls``), the real hook still run."""
    from console import audit

    caplog.set_level(logging.DEBUG)
    caplog.calls = []
    real = audit.record

    def spy(**kwargs):
        caplog.calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(audit, "record", spy)
    return caplog


def audited(log, action: str, outcome: str = "succeeded") -> list[dict]:
    return [call for call in log.calls if call["action"] == action and call.get("outcome", "succeeded") == outcome]


def form(**fields):
    data = {"name": "private", "kind": "v2", "host": "", "username": "", "secret": ""}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def add(client, **fields) -> Registry:
    response = client.post(reverse("registry_add"), form(**fields))
    assert response.status_code == 302, response.content.decode()[:3000]
    return Registry.objects.get(name=fields.get("name", "private"))


def post_and_wait(client, url: str, data: dict | None = None, expect_location: str | None = None,
                  timeout: float = 60) -> Operation:
    """POST what starts one operation, and return it once finished.

    The worker tells when over the channel layer (as the pages learn it), so this thread
    does not read the operations table while the worker writes it: the test database is
    SQLite's shared-cache memory, where a read and a write that meet fail at once
    ("database table is locked") instead of waiting.
    """
    layer = get_channel_layer()
    group = f"operations.{Environment.objects.get(name='local').pk}"
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    try:
        response = client.post(url, data or {})
        assert response.status_code == 302, response.content.decode()[:3000]
        if expect_location:
            assert response["Location"] == expect_location
        operation_id = async_to_sync(_finished)(layer, channel, timeout)
    finally:
        async_to_sync(layer.group_discard)(group, channel)
    return Operation.objects.get(pk=operation_id)


async def _finished(layer, channel: str, timeout: float) -> str:
    """The id of the first operation whose final state message arrives: a run says "state" twice
    (running, then finished); a refusal before running says it once, then nothing more."""
    states: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        quiet = 3 if any(states.values()) else deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=max(quiet, 0.1))
        except TimeoutError:
            # Refused before running (one message only), or a long quiet step: look once.
            for operation_id in states:
                if await Operation.objects.filter(pk=operation_id, state__in=Operation.FINISHED).aexists():
                    return operation_id
            continue
        if message.get("kind") == "state":
            operation_id = message["operation_id"]
            states[operation_id] = states.get(operation_id, 0) + 1
            if states[operation_id] == 2:
                return operation_id
    raise AssertionError(f"no operation finished within {timeout}s")


def start_and_wait(client, url_name, registry, **data) -> Operation:
    detail = reverse("registry_detail", args=[registry.pk])
    operation = post_and_wait(client, reverse(url_name, args=[registry.pk]), data, expect_location=detail)
    assert operation.finished, operation.state
    return operation


def assert_secret_nowhere_in_the_database(secret: str = SECRET) -> None:
    """Every text in every table, read raw: the secret is not there in clear."""
    with connection.cursor() as cursor:
        for model in apps.get_models():
            table = model._meta.db_table
            if table not in connection.introspection.table_names(cursor):
                continue
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608  (table names from the models)
            for row in cursor.fetchall():
                assert secret not in repr(row), f"the secret is in clear in {table}"


def page_text(client, *urls) -> str:
    return "".join(client.get(url).content.decode() for url in urls)


def test_added_secret_is_encrypted_and_never_shown(admin_client, published, audit_log):
    response = admin_client.get(reverse("registry_add"))
    assert response.status_code == 200 and 'type="password"' in response.content.decode()
    registry = add(admin_client, host=published["auth"], username="alice", secret=SECRET)
    raw = Registry.objects.filter(pk=registry.pk).values_list("secret_encrypted", flat=True).get()
    assert raw and SECRET not in raw and crypto.decrypt(raw) == SECRET
    assert registry.credentials() == Credentials("alice", SECRET)
    assert_secret_nowhere_in_the_database()
    html = page_text(admin_client, reverse("registries"), reverse("registry_detail", args=[registry.pk]),
                     reverse("registry_edit", args=[registry.pk]), reverse("registry_delete", args=[registry.pk]))
    assert SECRET not in html and raw not in html
    edit = admin_client.get(reverse("registry_edit", args=[registry.pk])).content.decode()
    assert "A secret is set: leave empty to keep it." in edit and "Clear the stored secret" in edit
    (created,) = audited(audit_log, "registry.create")
    assert created["details"]["username"] == "alice" and created["details"]["secret_set"] is True
    assert created["target_id"] == str(registry.pk)
    assert SECRET not in repr(audit_log.calls)
    assert SECRET not in audit_log.text and SECRET not in repr([r.__dict__ for r in audit_log.records])


@with_worker
def test_credentials_test_good_then_bad(admin_client, celery_worker, published, audit_log):
    registry = add(admin_client, host=published["auth"], username="alice", secret=SECRET)
    good = start_and_wait(admin_client, "registry_test", registry)
    assert good.state == "succeeded", good.error
    assert good.action == "registry.test" and good.target_id == str(registry.pk)
    registry.refresh_from_db()
    assert registry.last_test_ok is True and registry.last_tested_at and "alice" in registry.last_test_message
    detail = admin_client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
    assert 'data-result="ok"' in detail and 'data-pending="false"' in detail

    admin_client.post(reverse("registry_edit", args=[registry.pk]),
                      form(host=published["auth"], username="alice", secret="not-the-password"))
    registry.refresh_from_db()
    assert registry.last_test_ok is None  # the credentials changed: the old result no longer says anything
    bad = start_and_wait(admin_client, "registry_test", registry)
    assert bad.state == "failed" and "unauthorized" in bad.error.lower()
    registry.refresh_from_db()
    assert registry.last_test_ok is False and "unauthorized" in registry.last_test_message.lower()
    detail = admin_client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
    assert 'data-result="failed"' in detail and "incorrect username or password" in detail
    for operation in (good, bad):
        stored = str(operation.parameters) + str(operation.result) + operation.error + str(operation.progress)
        assert SECRET not in stored and "not-the-password" not in stored
    assert SECRET not in audit_log.text and "not-the-password" not in audit_log.text
    assert_secret_nowhere_in_the_database()
    assert_secret_nowhere_in_the_database("not-the-password")


@with_worker
def test_a_secret_that_cannot_be_decrypted_is_a_clear_failure(admin_client, celery_worker, published):
    registry = add(admin_client, host=published["auth"], username="alice", secret=SECRET)
    Registry.objects.filter(pk=registry.pk).update(secret_encrypted="gAAAAA-not-a-fernet-token")
    operation = start_and_wait(admin_client, "registry_test", registry)
    assert operation.state == "failed" and "cannot be decrypted" in operation.error
    assert "Internal error" not in operation.error
    registry.refresh_from_db()
    assert registry.last_test_ok is False and "set the secret of private again" in registry.last_test_message


@with_worker
def test_anonymous_test_says_whether_the_registry_lets_anyone_in(admin_client, celery_worker, published):
    open_one = add(admin_client, name="open", host=published["open"])
    assert start_and_wait(admin_client, "registry_test", open_one).state == "succeeded"
    closed = add(admin_client, name="closed", host=published["auth"])
    failed = start_and_wait(admin_client, "registry_test", closed)
    assert failed.state == "failed" and "authentication required" in failed.error


@with_worker
def test_browse_lists_repositories_and_tags_then_search_and_list_tags(
        admin_client, celery_worker, published):
    registry = add(admin_client, name="team", host=published["open"])
    operation = start_and_wait(admin_client, "registry_browse", registry)
    assert operation.state == "succeeded", operation.error
    assert operation.result["repositories"] == 2
    rows = {r.name: r.tags for r in Repository.objects.filter(registry=registry)}
    assert rows == {"team/busybox": ["1.0", "1.1"], "tools/app": ["latest"]}
    detail = admin_client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
    assert 'data-repository="team/busybox"' in detail and 'value="team/busybox:1.1"' in detail
    assert f'action="{reverse("image_pull")}"' in detail

    # Search answers htmx with the rows only.
    rows_only = admin_client.get(reverse("registry_detail", args=[registry.pk]), {"q": "TOOLS"},
                                 HTTP_HX_REQUEST="true", HTTP_HX_TARGET="repository-rows").content.decode()
    assert "tools/app" in rows_only and "team/busybox" not in rows_only and "<html" not in rows_only

    # A repository that is gone from the registry is gone from the list at the next browse.
    Repository.objects.create(registry=registry, name="gone/old", tags=["x"])
    start_and_wait(admin_client, "registry_browse", registry)
    assert not Repository.objects.filter(name="gone/old").exists()

    # One repository's tags, again; and one the registry does not know.
    listed = start_and_wait(admin_client, "registry_tags", registry, repository="tools/app")
    assert listed.state == "succeeded" and listed.result["tags"] == 1
    missing = start_and_wait(admin_client, "registry_tags", registry, repository="no/such")
    assert missing.state == "failed" and "not found" in missing.error
    activity = admin_client.get(reverse("registry_activity", args=[registry.pk])).content.decode()
    assert "List tags of no/such" in activity and 'data-testid="activity-error"' in activity


@with_worker
def test_a_registry_that_keeps_its_catalog_says_so_with_a_way_out(
        admin_client, celery_worker, published, monkeypatch):
    from engine.errors import RegistryError

    def refused(*args, **kwargs):
        error = RegistryError(f"denied: requested access to {published['open']} is denied")
        error.status, error.code = 403, "DENIED"
        raise error

    monkeypatch.setattr(distribution, "catalog", refused)
    registry = add(admin_client, name="closed", host=published["open"])
    operation = start_and_wait(admin_client, "registry_browse", registry)
    assert operation.state == "failed"
    assert operation.error.startswith("denied: requested access") and "type a repository name" in operation.error
    detail = admin_client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
    assert "type a repository name to list its tags" in detail and 'data-testid="list-tags"' in detail


@with_worker
def test_browse_with_credentials_then_pull_a_browsed_tag_through_the_page(
        admin_client, celery_worker, published, local):
    registry = add(admin_client, host=published["auth"], username="alice", secret=SECRET)
    browsed = start_and_wait(admin_client, "registry_browse", registry)
    assert browsed.state == "succeeded", browsed.error
    assert Repository.objects.get(registry=registry).tags == ["1.0"]
    detail = admin_client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
    assert 'name="reference" value="private/busybox:1.0"' in detail
    assert f'name="registry" value="{registry.pk}"' in detail

    # What the Pull button posts.
    pull = post_and_wait(admin_client, reverse("image_pull"), {"reference": "private/busybox:1.0",
                                                               "registry": registry.pk})
    assert pull.action == "image.pull"
    assert pull.state == "succeeded", pull.error
    assert f"{published['auth']}/private/busybox:1.0" in pull.result["repo_tags"]
    assert Image.objects.filter(environment=local, search_text__contains="private/busybox").exists()
    assert SECRET not in str(pull.parameters) + str(pull.result) + str(browsed.parameters)


def test_edit_keeps_the_secret_when_left_empty_and_clears_it_when_asked(admin_client, published, audit_log):
    registry = add(admin_client, host=published["auth"], username="alice", secret=SECRET)
    raw = registry.secret_encrypted
    response = admin_client.post(reverse("registry_edit", args=[registry.pk]),
                                 form(name="renamed", host=published["auth"], username="alice"))
    assert response.status_code == 302
    registry.refresh_from_db()
    assert registry.name == "renamed" and registry.secret_encrypted == raw
    assert registry.credentials().password == SECRET
    assert audited(audit_log, "registry.update")[-1]["details"]["changed"] == ["name"]

    # A new secret and "clear" together is refused.
    response = admin_client.post(reverse("registry_edit", args=[registry.pk]),
                                 form(name="renamed", host=published["auth"], username="alice",
                                      secret="other-secret", clear_secret="on"))
    assert response.status_code == 400 and 'class="field-error"' in response.content.decode()
    registry.refresh_from_db()
    assert registry.credentials().password == SECRET

    # Clearing the secret alone (a username without a secret is fine).
    response = admin_client.post(reverse("registry_edit", args=[registry.pk]),
                                 form(name="renamed", host=published["auth"], username="alice", clear_secret="on"))
    assert response.status_code == 302
    registry.refresh_from_db()
    assert registry.secret_encrypted == "" and not registry.has_secret
    details = audited(audit_log, "registry.update")[-1]["details"]
    assert details["changed"] == ["secret"] and details["cleared"] == ["secret"] and details["username"] == "alice"
    detail = admin_client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
    assert 'data-testid="secret-state">none' in detail
    assert len(audited(audit_log, "registry.update")) == 2  # the refused edit changed nothing
    assert SECRET not in audit_log.text + repr(audit_log.calls) and "other-secret" not in repr(audit_log.calls)


def test_changing_the_host_forgets_the_browsed_repositories(admin_client, published):
    registry = add(admin_client, host=published["open"])
    Repository.objects.create(registry=registry, name="team/busybox", tags=["1.0"])
    admin_client.post(reverse("registry_edit", args=[registry.pk]), form(host="registry.example.com"))
    assert not Repository.objects.filter(registry=registry).exists()


def test_delete_asks_then_deletes_with_its_repositories(admin_client, published, audit_log):
    registry = add(admin_client, host=published["auth"], username="alice", secret=SECRET)
    Repository.objects.create(registry=registry, name="private/busybox", tags=["1.0"])
    confirm = admin_client.get(reverse("registry_delete", args=[registry.pk])).content.decode()
    assert "Delete private?" in confirm and "Images already pulled from it stay" in confirm
    assert Registry.objects.filter(pk=registry.pk).exists()
    response = admin_client.post(reverse("registry_delete", args=[registry.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("registries")
    assert not Registry.objects.exists() and not Repository.objects.exists()
    (deleted,) = audited(audit_log, "registry.delete")
    assert deleted["target_name"] == "private" and deleted["target_id"] == str(registry.pk)


def test_viewer_sees_registries_but_cannot_change_or_use_them(client, django_user_model, published, audit_log):
    registry = Registry(name="private", host=published["auth"], username="alice", use=Registry.Use.EVERYONE)
    registry.set_secret(SECRET)
    registry.save()
    hidden = Registry.objects.create(name="admins-only", host=published["auth"])  # its owner's alone
    viewer = django_user_model.objects.create_user("viewer", password="x" * 12)
    grant(viewer, "read-only", Environment.objects.get(name="local"))  # no role, nothing to see
    client.force_login(viewer)
    listing = client.get(reverse("registries"))
    assert listing.status_code == 200 and b"private" in listing.content and b"Add registry" not in listing.content
    assert b"admins-only" not in listing.content
    assert client.get(reverse("registry_detail", args=[hidden.pk])).status_code == 404
    detail = client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
    for button in ("Test credentials", "Browse repositories", ">Edit<", ">Delete<", "pull-tag"):
        assert button not in detail
    assert SECRET not in detail
    assert client.get(reverse("registry_add")).status_code == 403
    assert client.post(reverse("registry_add"), form(name="mine", host="registry.example.com")).status_code == 403
    assert client.get(reverse("registry_edit", args=[registry.pk])).status_code == 403
    assert client.post(reverse("registry_edit", args=[registry.pk]),
                       form(host="evil.example.com", username="mallory", secret="x")).status_code == 403
    assert client.post(reverse("registry_delete", args=[registry.pk])).status_code == 403
    for url_name in ("registry_test", "registry_browse"):
        assert client.post(reverse(url_name, args=[registry.pk])).status_code == 403
    assert client.post(reverse("registry_tags", args=[registry.pk]), {"repository": "x/y"}).status_code == 403
    registry.refresh_from_db()
    assert (registry.name, registry.host, registry.username) == ("private", published["auth"], "alice")
    assert registry.credentials().password == SECRET
    assert list(Registry.objects.values_list("name", flat=True)) == ["admins-only", "private"]
    assert not Operation.objects.exists()
    denied = {call["action"] for call in audit_log.calls if call.get("outcome") == "denied"}
    assert {"registry.create", "registry.update", "registry.delete", "registry.test", "registry.browse",
            "registry.tags"} <= denied


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"name": ""}, "name", "Give the registry a name."),
    ({"name": "   "}, "name", "Give the registry a name."),
    ({"host": ""}, "host", "Give the registry&#x27;s host"),
    ({"host": "reg istry.example.com"}, "host", "cannot contain spaces"),
    ({"host": "registry.example.com:70000"}, "host", "from 1 to 65535"),
    ({"host": "registry.example.com:0"}, "host", "from 1 to 65535"),
    ({"host": "registry.example.com:"}, "host", "from 1 to 65535"),
    ({"host": "registry.example.com/team/app"}, "host", "without a path"),
    ({"host": "ftp://registry.example.com"}, "host", "is not a registry address"),
    ({"host": "bad_host.example.com"}, "host", "not a valid host name"),
    ({"host": "myregistry"}, "host", "Add a domain or a port"),
    ({"host": "user:pw@registry.example.com"}, "host", "in their own fields"),
    ({"kind": "acr", "host": "registry.example.com"}, "host", "ends in .aliyuncs.com"),
    ({"kind": "nope", "host": "registry.example.com"}, "kind", "Select a valid choice"),
    ({"host": "registry.example.com", "secret": "s3cret-value"}, "username", "needs a username"),
    ({"host": "registry.example.com", "username": "a b"}, "username", "cannot contain spaces"),
])
def test_bad_input_is_an_inline_error_and_saves_nothing(admin_client, fields, field, message):
    response = admin_client.post(reverse("registry_add"), form(**fields))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html, html[:4000]
    # the error sits next to its field
    start = html.index(f'name="{field}"')
    assert 'class="field-error"' in html[start:start + 1500]
    assert "s3cret-value" not in html
    assert not Registry.objects.exists() and not Operation.objects.exists()


def test_duplicate_name_is_refused_whatever_its_case(admin_client):
    add(admin_client, name="Team", host="registry.example.com")
    response = admin_client.post(reverse("registry_add"), form(name="team", host="other.example.com"))
    assert response.status_code == 400 and "A registry called team already exists." in response.content.decode()
    assert Registry.objects.count() == 1


@pytest.mark.parametrize(("kind", "typed", "host", "insecure"), [
    ("v2", "http://Registry.Example.com:5000/", "registry.example.com:5000", True),
    ("v2", "https://registry.example.com/v2/", "registry.example.com", False),
    ("v2", "[::1]:5000", "[::1]:5000", False),
    ("dockerhub", "whatever", "docker.io", False),
    ("acr", "crpi-abc.cn-hangzhou.personal.cr.aliyuncs.com", "crpi-abc.cn-hangzhou.personal.cr.aliyuncs.com", False),
])
def test_hosts_are_normalised(admin_client, kind, typed, host, insecure):
    registry = add(admin_client, kind=kind, host=typed)
    assert (registry.host, registry.insecure) == (host, insecure)


def test_acr_region_gives_its_host_and_is_shown_again_when_editing(admin_client):
    registry = add(admin_client, name="acr", kind="acr", region="cn-shanghai", host="")
    assert registry.host == "registry.cn-shanghai.aliyuncs.com"
    edit = admin_client.get(reverse("registry_edit", args=[registry.pk])).content.decode()
    assert '<option value="cn-shanghai" selected>' in edit


def test_docker_hub_has_no_catalog_but_lists_tags_of_a_typed_repository(admin_client, local):
    hub = add(admin_client, name="hub", kind="dockerhub", username="someone", secret="hub-token")
    detail = admin_client.get(reverse("registry_detail", args=[hub.pk])).content.decode()
    assert 'data-testid="no-catalog"' in detail and "Browse repositories" not in detail
    assert 'data-testid="list-tags"' in detail
    response = admin_client.post(reverse("registry_browse", args=[hub.pk]), follow=True)
    assert "does not list its repositories" in response.content.decode()
    assert not Operation.objects.exists()
    # Docker Hub's official images live under library/ (what the engine asks for).
    assert services.normalize_repository(hub, "busybox") == "library/busybox"
    assert services.normalize_repository(hub, "docker.io/team/app") == "team/app"
    response = admin_client.post(reverse("registry_tags", args=[hub.pk]), {"repository": "busybox:latest"})
    assert response.status_code == 400 and "without a tag" in response.content.decode()
    assert not Operation.objects.exists()


def test_list_and_search(admin_client):
    for name in ("alpha", "beta", "gamma"):
        add(admin_client, name=name, host=f"{name}.example.com")
    listing = admin_client.get(reverse("registries")).content.decode()
    assert all(f'data-registry="{n}"' in listing for n in ("alpha", "beta", "gamma"))
    assert "not tested" in listing and "3 in all" in listing
    rows = admin_client.get(reverse("registries"), {"q": "BETA.example"}, HTTP_HX_REQUEST="true",
                            HTTP_HX_TARGET="registry-rows").content.decode()
    assert 'data-registry="beta"' in rows and 'data-registry="alpha"' not in rows and "<html" not in rows


def test_repositories_paginate_and_search_with_a_constant_number_of_queries(admin_client, django_assert_max_num_queries):
    registry = add(admin_client, name="big", host="registry.example.com")
    Repository.objects.bulk_create([Repository(registry=registry, name=f"team/app{i:04d}", tags=["1.0", "latest"])
                                    for i in range(1200)])
    url = reverse("registry_detail", args=[registry.pk])
    first = admin_client.get(url).content.decode()
    assert first.count("data-repository=") == 50 and "Page 1 of 24" in first and "team/app0000" in first
    with django_assert_max_num_queries(12):
        page = admin_client.get(url, {"page": 3}).content.decode()
    assert "team/app0100" in page and "team/app0099" not in page
    found = admin_client.get(url, {"q": "app11"}).content.decode()
    assert found.count("data-repository=") == 50 and "Page 1 of 2" in found
    assert 'value="team/app0100:latest"' in page  # a Pull button per tag


def test_many_tags_fold_behind_a_more_link(admin_client):
    registry = add(admin_client, name="tags", host="registry.example.com")
    Repository.objects.create(registry=registry, name="team/app", tags=[f"1.{i}" for i in range(45)])
    page = admin_client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
    assert page.count('data-testid="pull-tag"') == 45 and "<summary>15 more</summary>" in page
