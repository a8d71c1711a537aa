"""The matrix through the images and operations pages: every built-in role on
its own, a teammate's, a public, another's and an unowned image; the outsider;
another environment's objects; a form replayed after access was lost.

No worker runs here: an accepted action is a 302 to its queued operation.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from console.access import catalog
from console.access.models import Ownership
from console.access.roles import grant
from console.accounts.models import Membership, Team
from console.core.models import Environment
from console.inventory.models import Image
from console.operations.models import Operation

pytestmark = pytest.mark.django_db
User = get_user_model()
ROLES = [r.key for r in catalog.BUILTIN_ROLES] + ["outsider"]
KINDS = ["own", "team", "public", "other", "unowned"]


def allowed(role_key: str, permission: str, kind: str | None = None) -> bool:
    if role_key == "outsider":
        return False
    role = catalog.BUILTIN_BY_KEY[role_key]
    if permission not in role.permissions:
        return False
    if role.scope == catalog.SCOPE_OWNED:
        return not catalog.BY_NAME[permission].environment_wide and kind in (None, "own", "team", "public")
    return True


class FakeDriver:
    def inspect_image(self, image_id):
        return {"Config": {}, "Layers": [], "HistoryRows": []}


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


@pytest.fixture
def world(local, monkeypatch):
    monkeypatch.setattr("console.images.views.driver_for", lambda environment: FakeDriver())
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    team = Team.objects.create(name="web")
    Membership.objects.create(team=team, user=alice)
    images = {}
    for kind in KINDS:
        image = Image.objects.create(environment=local, image_id=f"sha256:{kind}".ljust(71, "0"),
                                     name=f"{kind}/app:1", repo_tags=[f"{kind}/app:1"], search_text=f"{kind}/app:1")
        images[kind] = image
        if kind == "unowned":
            continue
        record = Ownership.objects.create(
            environment=local, kind="image", engine_id=image.image_id, owner=alice if kind == "own" else bob,
            visibility="public" if kind == "public" else "restricted")
        if kind == "team":
            record.teams.add(team)
    return {"alice": alice, "bob": bob, "images": images}


def as_role(client, world, local, role_key):
    if role_key != "outsider":
        grant(world["alice"], role_key, local)
    client.force_login(world["alice"])
    return client


@pytest.mark.parametrize("role_key", ROLES)
def test_images_list_and_details(client, world, local, role_key):
    as_role(client, world, local, role_key)
    response = client.get(reverse("images"))
    if not allowed(role_key, "images.view"):
        assert response.status_code == 403
    else:
        html = response.content.decode()
        listed = {kind for kind in KINDS if f'data-image="{kind}/app:1"' in html}
        assert listed == {kind for kind in KINDS if allowed(role_key, "images.view", kind)}
        assert ('data-testid="pull-image"' in html) is allowed(role_key, "images.pull")
    for kind, image in world["images"].items():
        response = client.get(reverse("image_detail", args=[image.pk]))
        if not allowed(role_key, "images.view"):
            assert response.status_code == 403
        elif not allowed(role_key, "images.view", kind):
            assert response.status_code == 404, kind  # not a 403: its existence is not told
        else:
            html = response.content.decode()
            assert response.status_code == 200
            assert ("Add tag" in html) is allowed(role_key, "images.tag", kind)
            assert ("Remove image" in html) is allowed(role_key, "images.remove", kind)


@pytest.mark.parametrize("role_key", ROLES)
@pytest.mark.parametrize("kind", KINDS)
def test_image_actions(client, world, local, role_key, kind):
    as_role(client, world, local, role_key)
    image = world["images"][kind]
    tag = client.post(reverse("image_tag", args=[image.pk]), {"target": "berth/new:1"})
    if allowed(role_key, "images.tag", kind):
        assert tag.status_code == 302
    else:
        assert tag.status_code in (403, 404)
        assert not Operation.objects.filter(action="image.tag").exists()
    client.post(reverse("image_remove"), {"image": image.pk})
    # A public image's names are its owner's: others use them, but neither move nor remove them.
    removable = allowed(role_key, "images.remove", kind) and not (
        kind == "public" and catalog.BUILTIN_BY_KEY[role_key].scope == catalog.SCOPE_OWNED)
    assert Operation.objects.filter(action="image.remove").exists() is removable


@pytest.mark.parametrize("role_key", ROLES)
def test_pull_and_prune(client, world, local, role_key):
    as_role(client, world, local, role_key)
    pull = client.post(reverse("image_pull"), {"reference": "busybox:latest"})
    assert (pull.status_code == 302) is allowed(role_key, "images.pull")
    prune = client.post(reverse("image_prune"), {})
    assert (prune.status_code == 302) is allowed(role_key, "images.prune")
    assert Operation.objects.filter(action="image.prune").exists() is allowed(role_key, "images.prune")


@pytest.mark.parametrize("role_key", ROLES)
def test_operations_pages(client, world, local, role_key):
    as_role(client, world, local, role_key)
    mine = Operation.objects.create(environment=local, user=world["alice"], username="alice", action="image.pull",
                                    target_name="mine/app:1")
    theirs = Operation.objects.create(environment=local, user=world["bob"], username="bob", action="image.pull",
                                      target_name="theirs/app:1")
    html = client.get(reverse("operations")).content.decode()
    scope = None if role_key == "outsider" else catalog.BUILTIN_BY_KEY[role_key].scope
    assert ("mine/app:1" in html) is allowed(role_key, "operations.view")
    assert ("theirs/app:1" in html) is (scope == catalog.SCOPE_ENVIRONMENT)
    assert client.get(reverse("operation_detail", args=[theirs.pk])).status_code == (
        200 if scope == catalog.SCOPE_ENVIRONMENT else 404)
    assert client.get(reverse("operation_detail", args=[mine.pk])).status_code == (
        200 if allowed(role_key, "operations.view") else 404)


def test_another_environments_objects_are_not_found(client, world, local):
    """An environment administrator of local, working in local, posting to staging's image."""
    staging = Environment.objects.create(name="staging")
    theirs = Image.objects.create(environment=staging, image_id="sha256:" + "5" * 64, name="staging/app:1",
                                  repo_tags=["staging/app:1"])
    as_role(client, world, local, "environment-admin")
    assert client.get(reverse("image_detail", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("image_tag", args=[theirs.pk]), {"target": "x/y:1"}).status_code == 404
    client.post(reverse("image_remove"), {"image": theirs.pk})
    # Switching to staging, where alice holds no role, does not help either.
    client.post(reverse("switch_environment"), {"environment": staging.pk})
    assert client.get(reverse("image_detail", args=[theirs.pk])).status_code == 403
    assert client.post(reverse("image_tag", args=[theirs.pk]), {"target": "x/y:1"}).status_code == 403
    assert not Operation.objects.exists()


def test_a_form_replayed_after_access_was_lost_is_refused(client, world, local):
    as_role(client, world, local, "standard")
    image = world["images"]["own"]
    assert "Add tag" in client.get(reverse("image_detail", args=[image.pk])).content.decode()
    # An administrator gives the image to bob alone; alice replays the form she had open.
    record = Ownership.objects.get(engine_id=image.image_id)
    record.owner = world["bob"]
    record.save()
    assert client.post(reverse("image_tag", args=[image.pk]), {"target": "berth/again:1"}).status_code == 404
    client.post(reverse("image_remove"), {"image": image.pk})
    assert not Operation.objects.exists()
    # The role itself withdrawn: pull is refused too.
    grant(world["alice"], "standard", local).delete()
    assert client.post(reverse("image_pull"), {"reference": "busybox"}).status_code == 403


def test_the_worker_checks_again_when_the_operation_runs(world, local):
    """Queued while alice could tag her image; by the time it runs, the image is bob's alone."""
    from console.images import services
    from console.operations.runner import run_operation

    grant(world["alice"], "standard", local)
    image = world["images"]["own"]
    operation = services.tag(world["alice"], local, image, "berth/late:1")
    Ownership.objects.filter(engine_id=image.image_id).update(owner=world["bob"])
    assert run_operation(str(operation.pk)) == "cancelled"
    operation.refresh_from_db()
    assert operation.error == "Permission withdrawn before the operation ran."


def ownership_url(image):
    return reverse("ownership", args=["image", image.image_id])


def test_owner_shares_with_a_team_but_cannot_hide_it_as_administrators_only(client, world, local):
    as_role(client, world, local, "standard")
    image = world["images"]["own"]
    team = Team.objects.get(name="web")
    assert client.post(ownership_url(image), {"visibility": "restricted", "teams": [team.pk]}).status_code == 302
    assert list(Ownership.objects.get(engine_id=image.image_id).teams.all()) == [team]
    assert client.post(ownership_url(image), {"visibility": "administrators"}).status_code == 403
    assert client.post(ownership_url(image), {"visibility": "public", "owner": "alice"}).status_code == 403
    assert Ownership.objects.get(engine_id=image.image_id).visibility == "restricted"


def test_others_cannot_change_what_they_do_not_own(client, world, local):
    as_role(client, world, local, "standard")
    public, other = world["images"]["public"], world["images"]["other"]
    assert client.get(ownership_url(public)).status_code == 200
    assert client.post(ownership_url(public), {"visibility": "restricted"}).status_code == 403
    assert client.get(ownership_url(other)).status_code == 404
    assert client.post(ownership_url(other), {"visibility": "public"}).status_code == 404
    assert Ownership.objects.get(engine_id=other.image_id).visibility == "restricted"


def test_an_administrator_publishes_an_unowned_image_and_standard_users_then_see_it(client, world, local):
    admin = User.objects.create_user("root", is_superuser=True)
    image = world["images"]["unowned"]
    client.force_login(admin)
    assert "made outside the console" in client.get(ownership_url(image)).content.decode()
    client.post(ownership_url(image), {"visibility": "public", "owner": "bob"})
    record = Ownership.objects.get(engine_id=image.image_id)
    assert (record.visibility, record.owner) == ("public", world["bob"])
    grant(world["alice"], "read-only", local)
    client.force_login(world["alice"])
    assert client.get(reverse("image_detail", args=[image.pk])).status_code == 200


def test_the_runner_records_the_owner_of_what_an_operation_made(world, local, monkeypatch):
    from console.operations import runner

    monkeypatch.setitem(runner.HANDLERS, "volume.create",
                        lambda ctx: {"created": {"kind": "volume", "id": ctx.parameters["name"]}})
    grant(world["alice"], "standard", local)
    operation = Operation.objects.create(environment=local, user=world["alice"], username="alice",
                                         action="volume.create", parameters={"name": "data"})
    assert runner.run_operation(str(operation.pk)) == "succeeded"
    record = Ownership.objects.get(kind="volume", engine_id="data")
    assert record.owner == world["alice"] and record.operation_id == operation.pk


def test_an_image_page_names_only_the_containers_one_may_see(client, world, local):
    from console.inventory.models import Container

    image = world["images"]["public"]
    for name in ("alices-web", "bobs-db"):
        Container.objects.create(environment=local, container_id=name, name=name, image_id=image.image_id,
                                 state="running")
    Ownership.objects.create(environment=local, kind="container", engine_id="alices-web", owner=world["alice"])
    as_role(client, world, local, "standard")
    html = client.get(reverse("image_detail", args=[image.pk])).content.decode()
    assert "alices-web" in html and "bobs-db" not in html


def test_no_ownership_page_for_what_the_console_does_not_know(client, world, local):
    client.force_login(User.objects.create_user("root", is_superuser=True))
    assert client.get(reverse("ownership", args=["image", "sha256:" + "f" * 64])).status_code == 404
    assert client.post(reverse("ownership", args=["image", "sha256:" + "f" * 64]),
                       {"visibility": "public"}).status_code == 404
    assert client.get(reverse("ownership", args=["planet", "earth"])).status_code == 404
    assert not Ownership.objects.filter(engine_id="sha256:" + "f" * 64).exists()
