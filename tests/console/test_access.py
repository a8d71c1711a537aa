"""The permission check itself: every permission x every built-in role, through
``has_permission`` and ``restrict``, on one's own, another's, a team's, public,
administrators-only and unowned resources; the outsider; the runner's re-check.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from console.access import catalog, ownership
from console.access.models import Ownership, Role
from console.access.permissions import (
    access_for,
    can_use_dangerous_options,
    has_permission,
    require,
    restrict,
)
from console.access.roles import builtin_role, grant
from console.accounts.models import Membership, Team
from console.core.models import Environment
from console.inventory.models import Image
from console.operations.models import Operation

pytestmark = pytest.mark.django_db

ROLES = [r.key for r in catalog.BUILTIN_ROLES]
KINDS = ["own", "team", "public", "other", "administrators", "unowned"]
SEEN_WITH_OWNED_SCOPE = {"own", "team", "public"}


def expected(role_key: str, permission: str, kind: str | None = None) -> bool:
    """What the published matrix says, written out independently of the code under test."""
    role = catalog.BUILTIN_BY_KEY[role_key]
    spec = catalog.BY_NAME[permission]
    if spec.global_only or permission not in role.permissions:
        return False
    if role.scope == catalog.SCOPE_OWNED:
        if spec.environment_wide:
            return False
        if kind is not None and kind not in SEEN_WITH_OWNED_SCOPE:
            return False
    return True


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


@pytest.fixture
def staging():
    return Environment.objects.create(name="staging")


def make_user(name, **extra):
    return get_user_model().objects.create_user(name, **extra)  # no password: hashing is slow


def own(environment, kind, engine_id, owner, visibility, users=(), teams=()):
    record = Ownership.objects.create(environment=environment, kind=kind, engine_id=engine_id, owner=owner,
                                      owner_name=owner.username, visibility=visibility)
    record.users.set(users)
    record.teams.set(teams)
    return record


@pytest.fixture
def world(local):
    """alice holds the role under test; bob owns things; alice's team shares one of bob's images."""
    alice, bob = make_user("alice"), make_user("bob")
    team = Team.objects.create(name="web")
    Membership.objects.create(team=team, user=alice)
    images = {}
    for kind in KINDS:
        images[kind] = Image.objects.create(environment=local, image_id=f"sha256:{kind:0<64}"[:71],
                                            name=f"{kind}/app:1", repo_tags=[f"{kind}/app:1"],
                                            search_text=f"{kind}/app:1")
    V = Ownership.Visibility
    own(local, "image", images["own"].image_id, alice, V.RESTRICTED)
    own(local, "image", images["team"].image_id, bob, V.RESTRICTED, teams=[team])
    own(local, "image", images["public"].image_id, bob, V.PUBLIC)
    own(local, "image", images["other"].image_id, bob, V.RESTRICTED)
    own(local, "image", images["administrators"].image_id, bob, V.ADMINISTRATORS)
    return {"alice": alice, "bob": bob, "team": team, "images": images}


@pytest.mark.parametrize("role_key", ROLES)
@pytest.mark.parametrize("permission", catalog.NAMES)
def test_matrix_through_has_permission(local, staging, role_key, permission):
    user = make_user("holder")
    grant(user, role_key, local)
    assert has_permission(user, permission, local) is expected(role_key, permission)
    assert has_permission(user, permission, staging) is False  # held in local only
    if expected(role_key, permission):
        require(user, permission, local)
    else:
        with pytest.raises(PermissionDenied):
            require(user, permission, local)


@pytest.mark.parametrize("role_key", ROLES)
@pytest.mark.parametrize("permission", [p for p in catalog.NAMES if p.startswith("images.")])
def test_matrix_on_each_kind_of_resource(world, local, role_key, permission):
    alice = world["alice"]
    grant(alice, role_key, local)
    for kind, image in world["images"].items():
        assert has_permission(alice, permission, local, image) is expected(role_key, permission, kind), kind
        assert has_permission(alice, permission, local, ("image", image.image_id)) is expected(
            role_key, permission, kind), kind


@pytest.mark.parametrize("role_key", ROLES)
@pytest.mark.parametrize("permission", ["images.view", "images.tag", "images.remove", "images.push"])
def test_restrict_lists_exactly_what_the_matrix_allows(world, local, staging, role_key, permission):
    alice = world["alice"]
    grant(alice, role_key, local)
    Image.objects.create(environment=staging, image_id="sha256:" + "9" * 64, name="elsewhere")
    listed = set(restrict(Image.objects.all(), alice, permission, local).values_list("name", flat=True))
    want = {f"{kind}/app:1" for kind in KINDS if expected(role_key, permission, kind)}
    assert listed == want


def creates(operation):
    """What the runner passes: the (kind, result key) its action declares."""
    from console.operations.actions import ACTIONS

    return ACTIONS[operation.action].creates


def test_the_union_of_direct_and_team_roles_applies(world, local):
    alice, team = world["alice"], world["team"]
    grant(alice, "read-only", local)
    assert not has_permission(alice, "containers.operate", local)
    grant(team, "operator", local)
    assert has_permission(alice, "containers.operate", local)
    # The operator role's environment scope wins over read-only's owned scope for what both grant.
    assert has_permission(alice, "images.view", local, world["images"]["other"])
    reasons = access_for(alice, local).reasons["images.view"]
    assert {(a.role.builtin_key, a.team_id) for a in reasons} == {("read-only", None), ("operator", team.pk)}


def test_an_outsider_sees_and_does_nothing(world, local):
    carol = make_user("carol")
    for permission in catalog.NAMES:
        assert not has_permission(carol, permission, local)
        assert not has_permission(carol, permission)
    assert not restrict(Image.objects.all(), carol, "images.view", local).exists()
    Operation.objects.create(environment=local, user=world["bob"], username="bob", action="image.pull")
    assert not restrict(Operation.objects.all(), carol, "operations.view", local).exists()
    assert not can_use_dangerous_options(carol, local)


def test_disabled_users_and_unknown_permissions_get_nothing(local):
    user = make_user("gone")
    grant(user, "environment-admin", local)
    assert has_permission(user, "images.pull", local)
    assert has_permission(user, "containers.start", local)  # an alias of containers.operate
    user.is_active = False
    assert not has_permission(user, "images.pull", local)
    assert not has_permission(make_user("root", is_superuser=True), "images.fly", local)


def test_users_manage_is_the_global_administrators_alone(local):
    admin = make_user("root", is_superuser=True)
    user = make_user("ea")
    grant(user, "environment-admin", local)
    custom = Role.objects.create(name="sneaky", stored_permissions=["users.manage", "images.view"],
                                 scope=catalog.SCOPE_ENVIRONMENT)
    grant(user, custom, local)
    assert not has_permission(user, "users.manage", local)
    assert not has_permission(user, "users.manage")
    assert has_permission(admin, "users.manage")


def test_custom_roles_grant_what_they_list_in_their_scope(world, local):
    alice = world["alice"]
    role = Role.objects.create(name="Image janitor", scope=catalog.SCOPE_OWNED,
                               stored_permissions=["images.view", "images.remove", "images.prune", "bogus.perm"])
    grant(alice, role, local)
    assert has_permission(alice, "images.remove", local, world["images"]["own"])
    assert not has_permission(alice, "images.remove", local, world["images"]["other"])
    assert not has_permission(alice, "images.prune", local)  # environment-wide: needs the environment scope
    role.scope = catalog.SCOPE_ENVIRONMENT
    role.save()
    assert has_permission(alice, "images.prune", local)
    assert has_permission(alice, "images.remove", local, world["images"]["other"])


def test_operations_with_the_owned_scope_are_ones_own(world, local):
    alice, bob = world["alice"], world["bob"]
    grant(alice, "standard", local)
    mine = Operation.objects.create(environment=local, user=alice, username="alice", action="image.pull")
    Operation.objects.create(environment=local, user=bob, username="bob", action="image.pull")
    assert list(restrict(Operation.objects.all(), alice, "operations.view", local)) == [mine]
    grant(bob, "helpdesk", local)
    assert restrict(Operation.objects.all(), bob, "operations.view", local).count() == 2


@pytest.mark.parametrize(("role_key", "allowed"), [(k, k == "environment-admin") for k in ROLES])
def test_dangerous_options_are_for_administrators_and_environment_administrators(local, staging, role_key,
                                                                                  allowed):
    admin = make_user("root", is_superuser=True)
    user = make_user("maker")
    grant(user, role_key, local)
    assert can_use_dangerous_options(user, local) is allowed
    assert not can_use_dangerous_options(user, staging)
    assert can_use_dangerous_options(admin, local)


def test_a_custom_role_with_every_permission_still_cannot_use_dangerous_options(local):
    user = make_user("almost")
    grant(user, Role.objects.create(name="all", scope=catalog.SCOPE_ENVIRONMENT,
                                    stored_permissions=list(catalog.ASSIGNABLE)), local)
    assert not can_use_dangerous_options(user, local)


def test_ownership_hook_records_the_creator_and_their_teams(world, local):
    alice, team = world["alice"], world["team"]
    grant(team, "standard", local)
    operation = Operation.objects.create(environment=local, user=alice, username="alice", action="image.pull")
    ownership.record_from_result(operation, {"image_id": "sha256:" + "a" * 64, "repo_tags": ["x:1"]},
                                 creates(operation))
    record = Ownership.objects.get(engine_id="sha256:" + "a" * 64)
    assert (record.owner, record.kind, record.visibility) == (alice, "image", "restricted")
    assert list(record.teams.all()) == [team]
    # The same image made again by bob: alice stays the owner and shares it with no one more
    # (an identical image proves nothing about who made it; bob's names are his: test_names).
    again = Operation.objects.create(environment=local, user=world["bob"], username="bob", action="image.build")
    ownership.record_created(again, "image", "sha256:" + "a" * 64)
    record.refresh_from_db()
    assert record.owner == alice and not record.users.exists()
    # An explicit "created" in a result, and a non-administrator cannot hide things as administrators-only.
    made = Operation.objects.create(environment=local, user=alice, username="alice", action="volume.create",
                                    parameters={"access": {"visibility": "administrators"}})
    ownership.record_from_result(made, {"created": {"kind": "volume", "id": "data"}}, creates(made))
    assert Ownership.objects.get(kind="volume", engine_id="data").visibility == "restricted"
    # Nothing created, nothing recorded.
    before = Ownership.objects.count()
    ownership.record_from_result(Operation.objects.create(environment=local, user=alice, action="image.tag"),
                                 {"tagged": "x"})
    assert Ownership.objects.count() == before


def test_builtin_roles_exist_and_take_their_permissions_from_the_code():
    for spec in catalog.BUILTIN_ROLES:
        role = builtin_role(spec.key)
        assert role.permissions == spec.permissions and role.effective_scope == spec.scope
    role = builtin_role("helpdesk")
    role.stored_permissions = list(catalog.ASSIGNABLE)  # a stored list never widens a built-in role
    role.save()
    assert role.permissions == catalog.BUILTIN_BY_KEY["helpdesk"].permissions


def test_create_forms_offer_administrators_only_to_administrators(world, local):
    from django import forms

    from console.accounts.forms import access_parameters, add_access_fields

    alice = world["alice"]
    grant(alice, "standard", local)
    form = add_access_fields(forms.Form(), alice, local)
    assert [c for c, _ in form.fields["visibility"].choices] == ["restricted", "public"]
    assert list(form.fields["share_teams"].queryset) == [world["team"]]
    admin = make_user("root", is_superuser=True)
    form = add_access_fields(forms.Form({"visibility": "administrators"}), admin, local)
    assert form.is_valid() and access_parameters(form.cleaned_data) == {"visibility": "administrators"}


def test_loaded_images_and_recreated_containers(world, local):
    alice, bob = world["alice"], world["bob"]
    load = Operation.objects.create(environment=local, user=alice, username="alice", action="image.load")
    ownership.record_from_result(load, {"images": [{"id": "sha256:" + "1" * 64, "repo_tags": []},
                                                   {"id": "sha256:" + "2" * 64, "repo_tags": ["x:1"]}]},
                                 creates(load))
    assert Ownership.objects.filter(owner=alice, engine_id__in=["sha256:" + "1" * 64, "sha256:" + "2" * 64]).count() == 2
    made = Operation.objects.create(environment=local, user=alice, username="alice", action="container.create")
    ownership.record_from_result(made, {"id": "c1", "name": "web"}, creates(made))
    old = Ownership.objects.get(kind="container", engine_id="c1")
    old.visibility = "public"
    old.save()
    # bob (an operator, say) recreates it: the new container is still alice's, still public.
    again = Operation.objects.create(environment=local, user=bob, username="bob", action="container.recreate",
                                     parameters={"replace": "c1"})
    ownership.record_from_result(again, {"id": "c2", "name": "web"}, creates(again))
    new = Ownership.objects.get(kind="container", engine_id="c2")
    assert (new.owner, new.visibility) == (alice, "public")


def test_environments_where_a_user_holds_a_permission(world, local, staging):
    from console.access.permissions import environment_ids_for

    alice = world["alice"]
    grant(alice, "read-only", local)
    grant(world["team"], "environment-admin", staging)
    assert environment_ids_for(alice, "images.view") == {local.pk, staging.pk}
    assert environment_ids_for(alice, "images.prune") == {staging.pk}
    assert environment_ids_for(alice, "images.fly") == set()
    assert environment_ids_for(make_user("root", is_superuser=True), "images.prune") is None
