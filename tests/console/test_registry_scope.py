"""Who may use a registry's stored credentials: its owner, its teams, everyone (issue 12, item 8).

Owner / teammate / outsider (all Standard users) through the pages, the services and the
tasks (run here in the test's thread with ``run_operation``, as the worker runs them), with
Debian's docker-registry on loopback requiring alice/wonderland.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from console.access.models import Role
from console.access.roles import grant
from console.accounts.models import Membership, Team
from console.audit.models import AuditEvent
from console.core.models import Environment
from console.images import services as image_services
from console.operations.models import Operation
from console.operations.runner import run_operation
from console.registries import access, services
from console.registries.models import Registry
from engine.config import EngineConfig
from engine.distribution import transfer as distribution
from engine.distribution.credentials import Credentials
from engine.errors import NotFound
from engine.images.store import ImageStore
from tests.console.test_registries import post_and_wait
from tests.support.imagebuilder import busybox_image

pytestmark = pytest.mark.django_db
SECRET = "wonderland"


@pytest.fixture(scope="module")
def published(auth_registry, tmp_path_factory):
    source = ImageStore(EngineConfig(root=tmp_path_factory.mktemp("source"), run_root=Path("/tmp")))
    busybox_image(source, ref="test/busybox:latest")
    distribution.push(source, "test/busybox:latest", f"{auth_registry.host}/private/scope:1.0",
                      credentials=Credentials("alice", SECRET))
    return auth_registry.host


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


@pytest.fixture
def people(local):
    """owner (added the registry), teammate (in its team), outsider: all Standard users."""
    make = get_user_model().objects.create_user
    users = SimpleNamespace(owner=make("owner"), teammate=make("teammate"), outsider=make("outsider"))
    for user in vars(users).values():
        grant(user, "standard", local)
    users.team = Team.objects.create(name="dev")
    Membership.objects.create(team=users.team, user=users.teammate)
    return users


@pytest.fixture
def registry(people, published):
    registry = Registry(name="private", host=published, username="alice", created_by=people.owner,
                        use=Registry.Use.TEAMS)
    registry.set_secret(SECRET)
    registry.save()
    registry.teams.set([people.team])
    return registry


def run_now(operation) -> Operation:
    """Run the operation's task here, as the worker would, and return it finished."""
    run_operation(str(operation.pk))
    operation.refresh_from_db()
    return operation


def denials(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, outcome="denied"))


@pytest.fixture
def pulled_images():
    """Removes from the console's engine what a test pulled."""
    refs = []
    yield refs
    store = ImageStore(EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT)))
    for ref in refs:
        try:
            store.remove(ref)
        except NotFound:
            pass


# ------------------------------------------------------------------ pages

def test_pages_show_the_registry_to_owner_and_teammate_only(client, people, registry, local):
    for user in (people.owner, people.teammate):
        client.force_login(user)
        listing = client.get(reverse("registries")).content.decode()
        assert 'data-registry="private"' in listing
        detail = client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
        assert 'data-testid="test-registry"' in detail and SECRET not in detail
    client.force_login(people.outsider)
    assert 'data-registry="private"' not in client.get(reverse("registries")).content.decode()
    for name in ("registry_detail", "registry_activity"):
        assert client.get(reverse(name, args=[registry.pk])).status_code == 404
    for name in ("registry_test", "registry_browse"):
        assert client.post(reverse(name, args=[registry.pk])).status_code == 404
    assert client.post(reverse("registry_tags", args=[registry.pk]), {"repository": "private/scope"}).status_code == 404
    # The pull form does not offer it, and refuses it when posted anyway.
    assert ">private</option>" not in client.get(reverse("image_pull")).content.decode()
    response = client.post(reverse("image_pull"), {"reference": "private/scope:1.0", "registry": registry.pk})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not Operation.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_teammate_tests_and_pulls_through_the_pages(client, celery_worker, people, registry, local,
                                                    pulled_images):
    client.force_login(people.teammate)
    tested = post_and_wait(client, reverse("registry_test", args=[registry.pk]))
    assert tested.state == "succeeded", tested.error
    pulled_images.append(f"{registry.host}/private/scope:1.0")
    pull = post_and_wait(client, reverse("image_pull"), {"reference": "private/scope:1.0", "registry": registry.pk})
    assert pull.state == "succeeded", pull.error
    assert f"{registry.host}/private/scope:1.0" in pull.result["repo_tags"]


def test_everyone_and_owner_only(client, people, registry, local):
    registry.use = Registry.Use.EVERYONE
    registry.save()
    assert all(access.may_use(u, local, registry) for u in (people.owner, people.teammate, people.outsider))
    registry.use = Registry.Use.OWNER
    registry.save()
    assert access.may_use(people.owner, local, registry)
    assert not access.may_use(people.teammate, local, registry)
    assert not access.may_use(people.outsider, local, registry)
    # Environment-wide roles and global administrators use every registry.
    envadmin = get_user_model().objects.create_user("envadmin")
    grant(envadmin, "environment-admin", local)
    admin = get_user_model().objects.create_superuser("root", "", "x" * 12)
    assert access.may_use(envadmin, local, registry) and access.may_use(admin, local, registry)
    # A role with no registries.use uses none, whatever the registry says.
    viewer = get_user_model().objects.create_user("viewer")
    grant(viewer, "read-only", local)
    registry.use = Registry.Use.EVERYONE
    registry.save()
    assert not access.may_use(viewer, local, registry)
    assert access.visible(viewer, local).filter(pk=registry.pk).exists()


# ------------------------------------------------------------------ services

@pytest.mark.parametrize("start", [
    lambda user, env, reg: services.test(user, env, reg),
    lambda user, env, reg: services.browse(user, env, reg),
    lambda user, env, reg: services.list_tags(user, env, reg, "private/scope"),
])
def test_registry_services_refuse_the_outsider(people, registry, local, start):
    with pytest.raises(PermissionDenied):
        start(people.outsider, local, registry)
    assert not Operation.objects.exists()
    (denied,) = AuditEvent.objects.filter(outcome="denied", target_type="registry")
    assert denied.actor_name == "outsider" and denied.target_id == str(registry.pk)
    for user in (people.owner, people.teammate):
        assert start(user, local, registry).state == "queued"


def test_image_pull_and_push_services_refuse_the_outsider(people, registry, local):
    with pytest.raises(PermissionDenied):
        image_services.pull(people.outsider, local, "private/scope:1.0", registry)
    pusher = Role.objects.create(name="pusher", scope="owned",
                                 stored_permissions=["images.view", "images.push", "registries.use"])
    grant(people.outsider, pusher, local)
    image = SimpleNamespace(name="private/scope:1.0", image_id="sha256:" + "0" * 64)
    with pytest.raises(PermissionDenied):
        image_services.push(people.outsider, local, image, "private/scope:2.0", registry)
    assert not Operation.objects.exists()
    assert len(denials("registry.use")) == 2
    # Without a registry the pull is anonymous: nothing of the registry's is used.
    operation = image_services.pull(people.outsider, local, f"{registry.host}/private/scope:1.0")
    assert operation.parameters["registry_id"] is None
    assert image_services.pull(people.teammate, local, "private/scope:1.0", registry).state == "queued"


# ------------------------------------------------------------------ tasks

def test_tasks_check_again_when_they_run(people, registry, local):
    """Queued while allowed, run after the teammate left the team: cancelled, credentials unused."""
    test = services.test(people.teammate, local, registry)
    pull = image_services.pull(people.teammate, local, "private/scope:1.0", registry)
    push = Operation.objects.create(environment=local, user=people.teammate, username="teammate",
                                    action="image.push", target_type="image",
                                    parameters={"source": "x", "target": f"{registry.host}/x:1",
                                                "registry_id": registry.pk})
    Membership.objects.filter(user=people.teammate).delete()
    grant(people.teammate, Role.objects.create(name="pusher", scope="owned",
                                               stored_permissions=["images.push", "registries.use"]), local)
    for operation in (test, pull, push):
        done = run_now(operation)
        assert done.state == "cancelled", (operation.action, done.state, done.error)
        assert "credentials of private" in done.error
    registry.refresh_from_db()
    assert registry.last_tested_at is None  # the test never reached the registry


def test_credentials_for_is_the_one_decryption_point(people, registry, local):
    operation = SimpleNamespace(user=people.owner, environment=local, username="owner")
    options = access.credentials_for(operation, registry)
    assert options["credentials"] == Credentials("alice", SECRET)
    assert access.credentials_for(operation, None) == {}
    with pytest.raises(PermissionDenied):
        access.credentials_for(SimpleNamespace(user=people.outsider, environment=local, username="outsider"),
                               registry)


# ------------------------------------------------------------------ the form

def test_administrators_choose_who_uses_the_credentials(admin_client, people, published, local):
    response = admin_client.post(reverse("registry_add"), {
        "name": "shared", "kind": "v2", "host": published, "username": "alice", "secret": SECRET,
        "use": "teams", "teams": [people.team.pk]})
    assert response.status_code == 302, response.content.decode()[-3000:]
    registry = Registry.objects.get(name="shared")
    assert registry.use == "teams" and list(registry.teams.all()) == [people.team]
    created = AuditEvent.objects.get(action="registry.create")
    assert created.details["use"] == "teams" and created.details["teams"] == ["dev"]
    detail = admin_client.get(reverse("registry_detail", args=[registry.pk])).content.decode()
    assert "its owner and dev" in detail
    # "teams" without a team is refused and changes nothing.
    response = admin_client.post(reverse("registry_edit", args=[registry.pk]), {
        "name": "shared", "kind": "v2", "host": published, "username": "alice", "use": "teams"})
    assert response.status_code == 400 and "Pick at least one team" in response.content.decode()
    registry.refresh_from_db()
    assert list(registry.teams.all()) == [people.team]
    # A new registry is its owner's alone until an administrator says otherwise.
    response = admin_client.post(reverse("registry_add"), {"name": "plain", "kind": "v2", "host": published})
    assert Registry.objects.get(name="plain").use == "owner"
