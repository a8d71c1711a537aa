"""A process that cannot see the engine never concludes that it is empty: a reconcile
against a missing or unreadable engine root keeps every mirror row and ownership record,
and a page that finds an object gone asks a worker to reconcile instead of doing it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse

from console.access.models import Ownership
from console.core.models import Environment
from console.drivers import driver_for
from console.drivers.base import EngineUnreachable
from console.drivers.local import check_readable_dir
from console.inventory.models import Container, Image, Network, Volume
from console.inventory.reconcile import RECONCILERS, reconcile
from console.inventory.tasks import reconcile_all
from tests.support.worker import wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def mirrored():
    """A mirror with one row of each kind, each with its ownership record."""
    environment = Environment.local()
    rows = [Image.objects.create(environment=environment, image_id="sha256:" + "a" * 64, name="kept:1"),
            Container.objects.create(environment=environment, container_id="b" * 64, name="kept"),
            Volume.objects.create(environment=environment, name="kept-volume"),
            Network.objects.create(environment=environment, network_id="c" * 64, name="kept-net", driver="bridge")]
    for kind, engine_id in (("image", "sha256:" + "a" * 64), ("container", "b" * 64),
                            ("volume", "kept-volume"), ("network", "c" * 64)):
        Ownership.objects.create(environment=environment, kind=kind, engine_id=engine_id, visibility="public")
    return environment, rows


def assert_all_kept(rows):
    for row in rows:
        assert type(row).objects.filter(pk=row.pk).exists(), f"{row} was deleted"
    assert Ownership.objects.count() == 4


def engine_root_missing(tmp_path):
    return tmp_path / "not-mounted"


def engine_root_is_a_file(tmp_path):
    path = tmp_path / "engine"
    path.write_text("not an engine")
    return path


def engine_root_without_state(tmp_path):
    """A root that exists but was never an engine's (an empty volume mounted in its place)."""
    path = tmp_path / "empty-volume"
    path.mkdir()
    return path


@pytest.mark.parametrize("make_root", [engine_root_missing, engine_root_is_a_file, engine_root_without_state])
def test_a_reconcile_of_an_engine_it_cannot_see_keeps_every_row(settings, tmp_path, mirrored, make_root):
    environment, rows = mirrored
    settings.ENGINE_ROOT = str(make_root(tmp_path))
    for kind in RECONCILERS:
        with pytest.raises(EngineUnreachable, match="cannot be reached from this process"):
            reconcile(environment, kind)
    reconcile_all()  # the periodic pass says so in its log and goes on
    assert_all_kept(rows)
    # and nothing was created in its place
    assert not (tmp_path / "not-mounted").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) in ([], ["empty-volume"])
    if make_root is engine_root_without_state:
        assert list((tmp_path / "empty-volume").iterdir()) == []


def test_a_state_directory_it_cannot_read_is_unreachable(settings, tmp_path, mirrored):
    environment, rows = mirrored
    root = tmp_path / "engine"
    settings.ENGINE_ROOT = str(root)
    driver_for(environment).prepare()  # a real, prepared engine...
    (root / "containers").rename(root / "containers.moved")
    (root / "containers").write_text("")  # ...whose containers directory went bad
    with pytest.raises(EngineUnreachable, match="containers is not a directory"):
        reconcile(environment, "containers")
    assert_all_kept(rows)


@pytest.mark.root  # drops to nobody in a child
def test_an_unreadable_root_is_unreachable_for_an_unprivileged_process(tmp_path):
    """As root every directory is readable: ask in a child that dropped to nobody."""
    root = tmp_path / "engine"
    root.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o755)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                check_readable_dir(root, root)
            except EngineUnreachable as exc:
                code = 0 if "cannot be read" in str(exc) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_prepared_empty_engine_is_empty_not_unreachable(settings, tmp_path, mirrored):
    environment, rows = mirrored
    settings.ENGINE_ROOT = str(tmp_path / "engine")
    driver_for(environment).prepare()
    assert reconcile(environment, "volumes")["removed"] == 1
    assert not Volume.objects.filter(name="kept-volume").exists()
    assert not Ownership.objects.filter(kind="volume").exists()


def test_a_detail_page_of_an_engine_it_cannot_see_deletes_nothing(admin_client, settings, tmp_path, mirrored):
    environment, rows = mirrored
    settings.ENGINE_ROOT = str(tmp_path / "not-mounted")
    for page, row in (("container_detail", rows[1]), ("volume_detail", rows[2]), ("network_detail", rows[3])):
        response = admin_client.get(reverse(page, args=[row.pk]), follow=True)
        assert response.status_code == 200
        assert "cannot be reached" in response.content.decode()
    assert_all_kept(rows)
    assert not Path(settings.ENGINE_ROOT).exists()


def test_a_detail_page_of_something_gone_leaves_the_reconcile_to_a_worker(
        admin_client, settings, tmp_path, mirrored, celery_worker):
    environment, rows = mirrored
    settings.ENGINE_ROOT = str(tmp_path / "engine")
    driver_for(environment).prepare()
    response = admin_client.get(reverse("volume_detail", args=[rows[2].pk]), follow=True)
    assert "Volume kept-volume is no longer on the engine." in response.content.decode()
    # The worker reconciles volumes only: the others (still ghosts too) are untouched by the page.
    wait_until(lambda: not Volume.objects.filter(pk=rows[2].pk).exists())
    assert Image.objects.filter(pk=rows[0].pk).exists()
    assert Container.objects.filter(pk=rows[1].pk).exists()
