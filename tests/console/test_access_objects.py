"""The role matrix, object by object: every kind of object a request can name (an image in
a create, in a build's FROM and COPY --from; a volume; a network; a tag's target name; an
export), as its owner, a teammate it is shared with and an outsider, and as something only
administrators may see, through the service, the view and the task.

The real engine (the console's, with small busybox images); no worker: an accepted request
is a queued operation, and the task is run here, synchronously, with ``run_operation``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from console.access.models import Ownership
from console.access.roles import grant
from console.accounts.models import Membership, Team
from console.containers import services as containers
from console.core.models import Environment
from console.images import services as images
from console.inventory.models import Image, Network
from console.inventory.reconcile import reconcile
from console.operations.models import Operation
from console.operations.runner import run_operation

pytestmark = pytest.mark.django_db
User = get_user_model()
WHO = ["owner", "teammate", "outsider"]
ALLOWED = {"owner": True, "teammate": True, "outsider": False}


@pytest.fixture(scope="module")
def engine(console_engine):
    """alice's image, volume and network; a hidden (administrators-only) one of each; an
    image of each user's own to tag from."""
    from engine.images.store import ImageStore
    from engine.net.networks import Networks
    from engine.volumes import Volumes
    from tests.support.imagebuilder import busybox_image

    store = ImageStore(console_engine)
    made = {name: busybox_image(store, ref=f"objs/{name}:1", labels={"made-for": name})
            for name in ("alice", "hidden", "carol-own", "dave-own", "alice-own")}
    for name in ("objs-alice-data", "objs-hidden-data"):
        Volumes(console_engine).create(name)
    networks = Networks(console_engine)
    for name in ("objs-alice-net", "objs-hidden-net"):
        networks.create(name)
    return {"images": made, "networks": {n: networks.inspect(n)["Id"] for n in ("objs-alice-net",
                                                                                 "objs-hidden-net")}}


@pytest.fixture(autouse=True)
def no_leftover_transfers():
    """No worker takes the builds and uploads queued here: remove what they left."""
    import shutil

    before = set(images.transfers_dir().iterdir())
    yield
    for path in set(images.transfers_dir().iterdir()) - before:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def own(environment, kind, engine_id, owner, teams=(), visibility="restricted"):
    record = Ownership.objects.create(environment=environment, kind=kind, engine_id=engine_id, owner=owner,
                                      owner_name=owner.username, visibility=visibility)
    record.teams.set(teams)
    return record


@pytest.fixture
def world(engine):
    from engine.images.store import ImageStore

    ImageStore(_config()).tag(engine["images"]["alice"].id, "objs/alice:1")  # where an earlier test moved it
    local = Environment.local()
    for kind in ("images", "volumes", "networks", "containers"):
        reconcile(local, kind)
    users = {name: User.objects.create_user(name) for name in ("alice", "carol", "dave")}
    team = Team.objects.create(name="web")
    for name in ("alice", "carol"):
        Membership.objects.create(team=team, user=users[name])
    for user in users.values():
        grant(user, "standard", local)
    alice = users["alice"]
    made = engine["images"]
    own(local, "image", made["alice"].id, alice, [team])
    own(local, "tag", "objs/alice:1", alice, [team])
    for name in ("alice", "carol", "dave"):
        own(local, "image", made[f"{name}-own"].id, users[name])
        own(local, "tag", f"objs/{name}-own:1", users[name])
    own(local, "volume", "objs-alice-data", alice, [team])
    own(local, "network", engine["networks"]["objs-alice-net"], alice, [team])
    as_who = {"owner": users["alice"], "teammate": users["carol"], "outsider": users["dave"]}
    return {"local": local, "users": users, "team": team, "as": as_who, "images": made,
            "networks": engine["networks"]}


def refs(image) -> dict[str, str]:
    """The ways a request can name an image: a name, a digest, its ID, a short ID."""
    return {"name": image.repo_tags[0], "digest": image.repo_digests[0] if image.repo_digests else
            f"{image.repo_tags[0].split(':')[0]}@{image.manifest_digest}",
            "id": image.id, "short id": image.short_id}


def spec(image, **extra):
    return {"image": image, "network": "none", "command": ["true"], **extra}


# -- the service ------------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("how", ["name", "digest", "id", "short id"])
def test_image_in_a_create(world, who, how):
    user, local = world["as"][who], world["local"]
    for target, allowed in (("alice", ALLOWED[who]), ("hidden", False)):
        ref = refs(world["images"][target])[how]
        if allowed:
            operation = containers.create(user, local, spec(ref), start=False)
            assert operation.parameters["spec"]["image"] in (ref, world["images"][target].id)
        else:
            with pytest.raises(ValidationError, match="No such image"):
                containers.create(user, local, spec(ref), start=False)
    assert Operation.objects.count() == (1 if ALLOWED[who] else 0)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("where", ["FROM {ref}\n", "FROM scratch\nCOPY --from={ref} /bin/busybox /busybox\n",
                                   "ARG BASE={ref}\nFROM $BASE\n"])
def test_image_in_a_build(world, who, where):
    user, local = world["as"][who], world["local"]
    for target, allowed in (("alice", ALLOWED[who]), ("hidden", False)):
        for ref in refs(world["images"][target]).values():
            dockerfile = where.format(ref=ref)
            if allowed:
                images.build(user, local, dockerfile, [])
            else:
                with pytest.raises(ValidationError, match="No such image"):
                    images.build(user, local, dockerfile, [])
    assert Operation.objects.filter(action="image.build").count() == (4 if ALLOWED[who] else 0)


def creates(operation):
    """What the runner passes: the (kind, result key) its action declares."""
    from console.operations.actions import ACTIONS

    return ACTIONS[operation.action].creates


def test_a_build_may_pull_what_is_not_here_when_the_user_may_pull(world):
    dave, local = world["users"]["dave"], world["local"]
    images.build(dave, local, "FROM objs/not-here:1\n", [])  # the build will pull it
    with pytest.raises(ValidationError, match="No such image"):
        images.build(dave, local, "FROM sha256:" + "e" * 64 + "\n", [])  # an ID is never pulled


@pytest.mark.parametrize("who", WHO)
def test_volume_and_network_in_a_create(world, who):
    user, local = world["as"][who], world["local"]
    mine = f"objs/{user.username}-own:1"
    for volume, allowed in (("objs-alice-data", ALLOWED[who]), ("objs-hidden-data", False)):
        if allowed:
            containers.create(user, local, spec(mine, volumes=[f"{volume}:/data"]), start=False)
        else:
            with pytest.raises(ValidationError, match=f"The volume name {volume} is not available"):
                containers.create(user, local, spec(mine, volumes=[f"{volume}:/data"]), start=False)
    for network, allowed in (("objs-alice-net", ALLOWED[who]), ("objs-hidden-net", False)):
        for ref in (network, world["networks"][network]):
            if allowed:
                containers.create(user, local, spec(mine, network=ref), start=False)
            else:
                with pytest.raises(ValidationError, match=f"network {ref} not found"):
                    containers.create(user, local, spec(mine, network=ref), start=False)
    # A volume that does not exist yet is made by the create, and is the user's.
    containers.create(user, local, spec(mine, volumes=["objs-new-data:/data"]), start=False)
    assert Operation.objects.count() == (4 if ALLOWED[who] else 1)


@pytest.mark.parametrize("who", WHO)
def test_tag_target(world, who):
    """Tagging one's own image with a name held by others (or on a hidden image) is refused."""
    user, local = world["as"][who], world["local"]
    source = Image.objects.get(environment=local, image_id=world["images"][f"{user.username}-own"].id)
    for target, allowed in (("objs/alice:1", ALLOWED[who]), ("objs/hidden:1", False), ("objs/free:1", True)):
        if allowed:
            images.tag(user, local, source, target)
        else:
            with pytest.raises(ValidationError, match=f"The name {target} is not available"):
                images.tag(user, local, source, target)
        # a build's tags are names too
        if allowed:
            images.build(user, local, "FROM scratch\nLABEL a=b\n", [target])
        else:
            with pytest.raises(ValidationError, match="not available"):
                images.build(user, local, "FROM scratch\nLABEL a=b\n", [target])


# -- the view ---------------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
def test_through_the_pages(client, world, who):
    user, local = world["as"][who], world["local"]
    client.force_login(user)
    allowed = ALLOWED[who]
    mine = f"objs/{user.username}-own:1"
    form = {"network": "none", "restart": "no", "command": "true"}
    for data, ok in (({"image": "objs/alice:1"}, allowed), ({"image": "objs/hidden:1"}, False),
                     ({"image": world["images"]["hidden"].short_id}, False),
                     ({"image": mine, "volumes": "objs-alice-data:/data"}, allowed),
                     ({"image": mine, "volumes": "objs-hidden-data:/data"}, False),
                     ({"image": mine, "network": "objs-alice-net"}, allowed),
                     ({"image": mine, "network": "objs-hidden-net"}, False)):
        response = client.post(reverse("container_create"), {**form, **data})
        assert (response.status_code == 302) is ok, (data, response.content.decode()[-1500:])
        if not ok:
            assert response.status_code == 400
    page = client.get(reverse("container_create")).content.decode()
    assert ('value="objs-alice-net"' in page) is allowed
    assert 'value="objs-hidden-net"' not in page
    for dockerfile, ok in (("FROM objs/alice:1\n", allowed), ("FROM objs/hidden:1\n", False),
                           ("FROM scratch\nCOPY --from=objs/hidden:1 / /\n", False)):
        response = client.post(reverse("image_build"), {"dockerfile": dockerfile, "tags": ""})
        assert (response.status_code == 302) is ok
        if not ok:
            assert "No such image" in response.content.decode()
    source = Image.objects.get(environment=local, name=mine)
    response = client.post(reverse("image_tag", args=[source.pk]), {"target": "objs/alice:1"})
    assert (response.status_code == 302) is allowed
    hidden = Image.objects.get(environment=local, name="objs/hidden:1")
    assert client.get(reverse("image_detail", args=[hidden.pk])).status_code == 404


# -- the task ---------------------------------------------------------------------------

def queued(user, action, parameters, **target):
    """An operation as the service queued it, for the task to check again when it runs."""
    return Operation.objects.create(environment=Environment.local(), user=user, username=user.username,
                                    action=action, parameters=parameters, **target)


@pytest.mark.parametrize("who", WHO)
def test_the_task_checks_each_object_again(world, who, tmp_path):
    user = world["as"][who]
    mine = f"objs/{user.username}-own:1"
    cases = {
        "image": queued(user, "container.create", {"spec": spec("objs/alice:1"), "start": False}),
        "volume": queued(user, "container.create",
                         {"spec": spec(mine, volumes=["objs-alice-data:/data"]), "start": False}),
        "network": queued(user, "container.create", {"spec": spec(mine, network="objs-alice-net"),
                                                      "start": False}),
        "tag": queued(user, "image.tag", {"source": world["images"][f"{user.username}-own"].id,
                                          "target": "objs/alice:1"},
                      target_type="image", target_id=world["images"][f"{user.username}-own"].id),
    }
    for what, operation in cases.items():
        state = run_operation(str(operation.pk))
        operation.refresh_from_db()
        assert state == ("succeeded" if ALLOWED[who] else "cancelled"), (what, operation.error)
        if not ALLOWED[who]:
            assert "not found" in operation.error or "not available" in operation.error or \
                "No such image" in operation.error
    # A hidden object is refused to everyone, the owner included.
    hidden = [queued(user, "container.create", {"spec": spec("objs/hidden:1"), "start": False}),
              queued(user, "container.create", {"spec": spec(mine, volumes=["objs-hidden-data:/d"]),
                                                "start": False}),
              queued(user, "container.create", {"spec": spec(mine, network="objs-hidden-net"),
                                                "start": False})]
    for operation in hidden:
        assert run_operation(str(operation.pk)) == "cancelled"


@pytest.mark.parametrize("who", WHO)
def test_the_build_task_checks_its_images_again(world, who, tmp_path):
    """Queued while allowed; by the time it runs the image is bob's alone."""
    user, local = world["as"][who], world["local"]
    for dockerfile in ("FROM objs/alice:1\n", "FROM scratch\nCOPY --from=objs/alice:1 /bin/busybox /b\n"):
        work = tmp_path / f"w{len(dockerfile)}"
        (work / "context").mkdir(parents=True)
        (work / "Dockerfile").write_text(dockerfile)
        operation = queued(user, "image.build", {"work": str(work), "context": str(work / "context"),
                                                 "dockerfile": str(work / "Dockerfile"), "tags": []})
        assert run_operation(str(operation.pk)) == ("succeeded" if ALLOWED[who] else "cancelled")
    Ownership.objects.filter(kind="image", engine_id=world["images"]["alice"].id).update(
        owner=User.objects.create_user("bob"))
    Ownership.objects.filter(kind="tag", engine_id="objs/alice:1").delete()
    Ownership.objects.get(kind="image", engine_id=world["images"]["alice"].id).teams.clear()
    work = tmp_path / "late"
    (work / "context").mkdir(parents=True)
    (work / "Dockerfile").write_text("FROM objs/alice:1\n")
    operation = queued(user, "image.build", {"work": str(work), "context": str(work / "context"),
                                             "dockerfile": str(work / "Dockerfile"), "tags": []})
    assert run_operation(str(operation.pk)) == "cancelled"
    operation.refresh_from_db()
    assert "No such image: objs/alice:1" in operation.error
    assert local  # the environment the build ran in


# -- exports ------------------------------------------------------------------------------

@pytest.fixture
def exporters(world):
    """A custom role that may export what its holders see (owned scope)."""
    from console.access import catalog
    from console.access.models import Role

    role = Role.objects.create(name="Exporter", scope=catalog.SCOPE_OWNED,
                               stored_permissions=["images.view", "images.import_export", "operations.view"])
    for user in world["users"].values():
        grant(user, role, world["local"])
    return role


@pytest.mark.parametrize("who", WHO)
def test_an_export_is_for_who_made_it(client, world, exporters, who, tmp_path):
    from django.http import Http404

    local, alice = world["local"], world["users"]["alice"]
    path = tmp_path / "export.tar"
    path.write_bytes(b"tar")
    operation = Operation.objects.create(environment=local, user=alice, username="alice", action="image.save",
                                         state="succeeded", parameters={"names": ["objs/alice:1"],
                                                                        "path": str(path)})
    user = world["as"][who]
    client.force_login(user)
    response = client.get(reverse("image_export_download", args=[operation.pk]))
    if who == "owner":
        assert response.status_code == 200 and b"".join(response.streaming_content) == b"tar"
        assert images.export_file(user, local, operation.pk)[0] == path
    else:  # a teammate who may see the image, or an outsider: as if there were no such export
        assert response.status_code == 404
        with pytest.raises(Http404):
            images.export_file(user, local, operation.pk)
    admin = User.objects.create_user("root", is_superuser=True)
    assert images.export_file(admin, local, operation.pk)[0] == path


@pytest.mark.parametrize("who", WHO)
def test_an_export_names_only_visible_images_and_the_task_checks_them_again(world, exporters, who):
    user, local = world["as"][who], world["local"]
    image = Image.objects.get(environment=local, name="objs/alice:1")
    if ALLOWED[who]:
        operation = images.save(user, local, [image])
        Ownership.objects.filter(kind="image", engine_id=image.image_id).update(
            owner=User.objects.create_user("bob"))
        Ownership.objects.get(kind="image", engine_id=image.image_id).teams.clear()
        Ownership.objects.filter(kind="tag", engine_id="objs/alice:1").delete()
        assert run_operation(str(operation.pk)) == "cancelled"
        assert not (images.transfers_dir() / operation.parameters["path"]).exists()
    else:
        with pytest.raises(ValidationError, match="No such image"):
            images.save(user, local, [image])
    hidden = Image.objects.get(environment=local, name="objs/hidden:1")
    with pytest.raises(ValidationError, match="No such image"):
        images.save(user, local, [hidden])


# -- names and identical images -----------------------------------------------------------

def test_an_identical_image_shares_nothing_and_its_names_stay_their_holders(client, world, engine):
    """alice makes an image identical to bob's (the same bytes, so the same ID): she holds the
    name she put on it, sees the image through it, and neither joins bob's sharing list nor
    may remove bob's names or the image."""
    from console.access import ownership
    from engine.images.reference import parse
    from engine.images.store import ImageStore
    from tests.support.imagebuilder import busybox_built

    local, alice = world["local"], world["users"]["alice"]
    bob = User.objects.create_user("bob")
    grant(bob, "standard", local)
    store = ImageStore(_config())
    built = busybox_built(labels={"made-for": "bob-secret"})
    image = built.register(store, "objs/bob-secret:1")
    reconcile(local, "images")
    own(local, "image", image.id, bob)
    own(local, "tag", "objs/bob-secret:1", bob)
    row = Image.objects.get(environment=local, image_id=image.id)
    assert images_for(alice, local).filter(pk=row.pk).exists() is False
    # alice builds (or loads) the same bytes under her own name
    store.register(image.manifest_digest, parse("objs/alice-copy:1"))
    reconcile(local, "images")
    operation = Operation.objects.create(environment=local, user=alice, username="alice", action="image.build",
                                         parameters={"tags": ["objs/alice-copy:1"]})
    ownership.record_from_result(operation, {"image_id": image.id, "repo_tags": ["objs/alice-copy:1"]},
                                 creates(operation))
    record = Ownership.objects.get(kind="image", engine_id=image.id)
    assert record.owner == bob and not record.users.exists() and not record.teams.exists()
    row.refresh_from_db()
    assert images_for(alice, local).filter(pk=row.pk).exists()  # through her name
    client.force_login(alice)
    for page in (client.get(reverse("images")), client.get(reverse("image_detail", args=[row.pk]))):
        assert "objs/alice-copy:1" in page.content.decode()
        assert "objs/bob-secret" not in page.content.decode()  # bob's names are not shown to her
    assert "alice-copy" not in client.get(reverse("images"), {"q": "bob-secret"}).content.decode()
    assert "alice-copy" in client.get(reverse("images"), {"q": "alice-copy"}).content.decode()
    with pytest.raises(PermissionDenied, match="held by others"):
        images.remove(alice, local, row, tag="objs/bob-secret:1")
    with pytest.raises(PermissionDenied, match="Names held by others"):
        images.remove(alice, local, row)
    page = client.post(reverse("image_remove"), {"image": row.pk, "tag": "objs/bob-secret:1"})
    assert page.status_code == 403 and not Operation.objects.filter(action="image.remove").exists()
    images.remove(alice, local, row, tag="objs/alice-copy:1")  # her own name: hers to remove
    with pytest.raises(ValidationError, match="not available"):
        images.tag(alice, local, row, "objs/bob-secret:1")
    # bob, the owner, may do all of it
    images.remove(bob, local, row, tag="objs/bob-secret:1")


def test_a_pull_of_the_same_name_makes_the_puller_a_holder_of_that_name_only(world):
    """The name's registry decides its content, not the user: a pull that lands on an image
    someone else holds gives the puller that name, not the image's other names."""
    from console.access import ownership

    local, dave = world["local"], world["users"]["dave"]
    operation = Operation.objects.create(environment=local, user=dave, username="dave", action="image.pull",
                                         parameters={"reference": "docker.io/objs/alice:1"})
    ownership.record_from_result(operation, {"image_id": world["images"]["alice"].id,
                                             "repo_tags": ["objs/alice:1"]}, creates(operation))
    assert dave in Ownership.objects.get(kind="tag", engine_id="objs/alice:1").users.all()
    assert dave not in Ownership.objects.get(kind="image", engine_id=world["images"]["alice"].id).users.all()


def images_for(user, environment):
    from console.access.permissions import restrict

    return restrict(Image.objects.all(), user, "images.view", environment)


def _config():
    from pathlib import Path

    from django.conf import settings

    from engine.config import EngineConfig

    return EngineConfig(root=Path(settings.ENGINE_ROOT), run_root=Path(settings.ENGINE_RUN_ROOT))


def test_the_create_form_lists_only_visible_networks(client, world):
    client.force_login(world["users"]["dave"])
    page = client.get(reverse("container_create")).content.decode()
    assert Network.objects.filter(name="objs-alice-net").exists()
    assert "objs-alice-net" not in page and "objs-hidden-net" not in page


# -- what a refusal tells --------------------------------------------------------------------

def test_name_collisions_do_not_tell_what_exists(client, world):
    from console.inventory.models import Container
    from console.networks import services as networks
    from console.volumes import services as volumes

    local, users = world["local"], world["users"]
    row = Container.objects.create(environment=local, container_id="c" * 64, name="alices-web", state="exited")
    own(local, "container", row.container_id, users["alice"], [world["team"]])
    mine = "objs/dave-own:1"
    with pytest.raises(ValidationError) as refused:
        containers.create(users["dave"], local, spec(mine, name="alices-web"))
    assert refused.value.messages == ["The name alices-web is not available: pick another."]
    with pytest.raises(ValidationError, match="already in use by another container"):
        containers.create(users["carol"], local, spec("objs/carol-own:1", name="alices-web"))  # she sees it
    with pytest.raises(ValidationError, match="not available"):
        volumes.create(users["dave"], local, "objs-hidden-data")
    with pytest.raises(ValidationError, match="exists already"):
        volumes.create(users["carol"], local, "objs-alice-data")
    with pytest.raises(ValidationError, match="not available"):
        networks.create(users["dave"], local, "objs-hidden-net")
    hidden = Network.objects.get(environment=local, name="objs-hidden-net")
    with pytest.raises(ValidationError) as overlap:
        networks.create(users["dave"], local, "daves-net", subnet=hidden.subnet)
    assert overlap.value.messages == ["Overlaps a subnet already in use: pick another."]
    client.force_login(users["dave"])
    page = client.post(reverse("volumes"), {"name": "objs-hidden-data"}).content.decode()
    assert "not available" in page and "exists already" not in page
    assert not Operation.objects.exists()


def test_without_the_permission_nothing_is_told(world):
    """A Read-only user learns nothing from a create's errors: the permission comes first."""
    from console.inventory.models import Container
    from console.volumes import services as volumes

    local = world["local"]
    Container.objects.create(environment=local, container_id="d" * 64, name="taken-name", state="exited")
    reader = User.objects.create_user("reader")
    grant(reader, "read-only", local)
    for attempt in (lambda: containers.create(reader, local, spec("objs/hidden:1", name="x")),
                    lambda: containers.create(reader, local, spec("objs/hidden:1", name="taken-name")),
                    lambda: volumes.create(reader, local, "objs-hidden-data"),
                    lambda: containers.create(reader, local, spec("busybox", volumes=["/no/such:/x"]))):
        with pytest.raises(PermissionDenied):
            attempt()


def test_the_ownership_form_offers_only_teammates_and_teams(client, world):
    from console.access import sharing

    local, users, team = world["local"], world["users"], world["team"]
    other_team = Team.objects.create(name="payments")
    image = world["images"]["alice"]
    url = reverse("ownership", args=["image", image.id])
    client.force_login(users["alice"])
    page = client.get(url).content.decode()
    assert "carol" in page and "web" in page
    assert "dave" not in page and "payments" not in page
    response = client.post(url, {"visibility": "restricted", "users": [users["dave"].pk]})
    assert response.status_code == 400
    with pytest.raises(ValidationError):
        sharing.change(users["alice"], local, "image", image.id, visibility="restricted", users=[users["dave"]])
    with pytest.raises(ValidationError):
        sharing.change(users["alice"], local, "image", image.id, visibility="restricted", teams=[other_team])
    # An administrator shares it with dave; alice, saving the form, does not remove him unknowingly.
    admin = User.objects.create_user("root", is_superuser=True)
    client.force_login(admin)
    assert "dave" in client.get(url).content.decode()
    sharing.change(admin, local, "image", image.id, visibility="restricted", users=[users["dave"]], teams=[team])
    client.force_login(users["alice"])
    assert client.post(url, {"visibility": "restricted", "users": [users["carol"].pk]}).status_code == 302
    record = Ownership.objects.get(kind="image", engine_id=image.id)
    assert set(record.users.all()) == {users["carol"], users["dave"]}


@pytest.mark.parametrize("path", ["/no/such/path", "/etc"])
def test_a_host_path_is_refused_before_it_is_looked_at(client, world, path):
    dave, local = world["users"]["dave"], world["local"]
    client.force_login(dave)
    response = client.post(reverse("container_create"), {"image": "objs/dave-own:1", "network": "none",
                                                          "restart": "no", "volumes": f"{path}:/x"})
    page = response.content.decode()
    assert response.status_code == 400 and "only administrators may mount host paths" in page
    assert "does not exist" not in page
    with pytest.raises(PermissionDenied, match="host paths"):
        containers.create(dave, local, spec("objs/dave-own:1", volumes=[f"{path}:/x"]))


@pytest.mark.parametrize("hostname", ["bad_host", "-web", "web-", "a" * 64, "web..internal", "wéb"])
def test_hostnames_are_checked(client, world, hostname):
    dave, local = world["users"]["dave"], world["local"]
    client.force_login(dave)
    response = client.post(reverse("container_create"), {"image": "objs/dave-own:1", "network": "none",
                                                          "restart": "no", "hostname": hostname})
    page = response.content.decode()
    assert response.status_code == 400
    assert "labels separated by dots" in page or "at most 63 characters" in page  # the field's own limit
    with pytest.raises(ValidationError, match="labels separated by dots"):
        containers.create(dave, local, spec("objs/dave-own:1", hostname=hostname))
    operation = containers.create(dave, local, spec("objs/dave-own:1", hostname="web-1.internal"))
    assert operation.parameters["spec"]["hostname"] == "web-1.internal"


def test_the_build_audit_record_names_what_was_built(world):
    import hashlib
    import io
    import tarfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    from console.audit.models import AuditEvent

    alice, local = world["users"]["alice"], world["local"]
    dockerfile = "FROM objs/alice:1\n" + "".join(f"LABEL n{i}=x\n" for i in range(2000))  # > 16 KiB
    images.build(alice, local, dockerfile, ["objs/audited:1"])
    details = AuditEvent.objects.get(action="image.build", outcome="queued").details
    assert details["dockerfile_sha256"] == "sha256:" + hashlib.sha256(dockerfile.encode()).hexdigest()
    assert details["dockerfile_text"] == dockerfile[:16 * 1024] and details["dockerfile_truncated"] is True
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(b"FROM objs/alice:1\n")
        tar.addfile(info, io.BytesIO(b"FROM objs/alice:1\n"))
    images.build(alice, local, "", [], context=SimpleUploadedFile("c.tar", data.getvalue()))
    details = AuditEvent.objects.filter(action="image.build", outcome="queued").order_by("-id")[0].details
    assert details["context_sha256"] == "sha256:" + hashlib.sha256(data.getvalue()).hexdigest()
    assert details["dockerfile_text"] == "FROM objs/alice:1\n"


def test_a_contexts_dockerfile_is_checked_too(world):
    import io
    import tarfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    def context(**members):
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            for name, body in members.items():
                info = tarfile.TarInfo(name)
                if isinstance(body, tuple):  # a symlink
                    info.type, info.linkname = tarfile.SYMTYPE, body[0]
                    tar.addfile(info)
                else:
                    info.size = len(body)
                    tar.addfile(info, io.BytesIO(body))
        return SimpleUploadedFile("c.tar", data.getvalue())

    dave, local = world["users"]["dave"], world["local"]
    with pytest.raises(ValidationError, match="No such image"):
        images.build(dave, local, "", [], context=context(Dockerfile=b"FROM objs/hidden:1\n"))
    with pytest.raises(ValidationError, match="regular file"):
        images.build(dave, local, "", [], context=context(Dockerfile=("/etc/hostname",)))
    assert not Operation.objects.exists()


@pytest.mark.parametrize("who", WHO)
def test_an_import_may_not_move_names_held_by_others(world, exporters, who, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.support.imagebuilder import busybox_built, docker_save_tar

    user, local = world["as"][who], world["local"]
    tar = docker_save_tar(tmp_path / "in.tar", [(busybox_built(labels={"imported": "yes"}), ["objs/alice:1"])])
    upload = SimpleUploadedFile("in.tar", tar.read_bytes())
    before = set(images.transfers_dir().glob("upload-*"))
    if ALLOWED[who]:
        images.load(user, local, upload)
    else:
        with pytest.raises(ValidationError, match="The name objs/alice:1 is not available"):
            images.load(user, local, upload)
        assert set(images.transfers_dir().glob("upload-*")) == before  # nothing kept
    # The task checks again (as if queued before the name was taken).
    copy = tmp_path / "queued.tar"
    copy.write_bytes(tar.read_bytes())
    operation = queued(user, "image.load", {"path": str(copy)})
    assert run_operation(str(operation.pk)) == ("succeeded" if ALLOWED[who] else "cancelled")


def test_a_name_that_reads_as_an_image_id_is_refused(world):
    """The engine tries a name before an ID prefix: a tag "abc123" or "sha256:abc123" would
    catch whoever runs an image by its short ID."""
    dave, local = world["users"]["dave"], world["local"]
    source = Image.objects.get(environment=local, name="objs/dave-own:1")
    alices = world["images"]["alice"].short_id
    for target in (alices, f"sha256:{alices}"):
        with pytest.raises(ValidationError, match="reads as an image ID"):
            images.tag(dave, local, source, target)
        with pytest.raises(ValidationError, match="reads as an image ID"):
            images.build(dave, local, "FROM scratch\nLABEL a=b\n", [target])
    admin = User.objects.create_user("root", is_superuser=True)
    with pytest.raises(ValidationError, match="reads as an image ID"):
        images.tag(admin, local, source, f"sha256:{alices}")
    images.tag(admin, local, source, "cafe")  # an administrator's own choice
