"""Volumes: named, anonymous (from the image's VOLUME), bind and read-only mounts, on real runc."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from engine.errors import Conflict, InvalidArgument, NotFound
from engine.volumes import Volumes, parse_mount
from tests.support.containers import all_leftovers, cleanup, make_engine


@pytest.fixture
def engine():
    eng, _ = make_engine(volumes=["/cache"])
    yield eng
    cleanup(eng)


def run(eng, cmd, **options):
    c, code = eng.run("test/busybox", ["sh", "-c", cmd], detach=False, **options)
    return c, code, "".join(r["log"] for r in eng.logs(c.id))


def test_named_volume_outlives_its_container(engine):
    vols = Volumes(engine.config)
    c, code, _ = run(engine, "echo kept > /data/file && mkdir /data/sub", volumes=["data:/data"])
    assert code == 0
    info = vols.inspect("data")
    assert info["Containers"] == [{"Id": c.id, "Name": c.name}] and info["UsageData"]["Size"] > 0
    with pytest.raises(Conflict, match="in use"):
        vols.remove("data")
    engine.remove(c.id)
    assert vols.inspect("data")["Containers"] == []
    c2, code, out = run(engine, "cat /data/file", volumes=["data:/data:ro"])
    assert code == 0 and out == "kept\n"
    _, code, _ = run(engine, "touch /data/other", volumes=["data:/data:ro"])
    assert code != 0  # read-only
    engine.remove(c2.id)
    for c in engine.ids():
        engine.remove(c)
    vols.remove("data")
    assert "data" not in vols.names()


def test_anonymous_volumes_from_the_image_go_with_their_container(engine):
    vols = Volumes(engine.config)
    c, code, _ = run(engine, "echo x > /cache/x && echo y > /tmp/y", volumes=["/scratch"])
    assert code == 0
    mounts = engine.inspect(c.id)["Mounts"]
    assert sorted(m["Destination"] for m in mounts) == ["/cache", "/scratch"]
    anonymous = [m["Name"] for m in mounts]
    assert all(vols.inspect(name)["Anonymous"] for name in anonymous)
    assert (vols.path(next(m["Name"] for m in mounts if m["Destination"] == "/cache")) / "x").read_text() == "x\n"
    engine.remove(c.id)
    assert not set(anonymous) & set(vols.names())


def test_bind_mounts_and_read_only(engine):
    host = Path(tempfile.mkdtemp(prefix="bv-"))
    try:
        (host / "in").write_text("from host\n")
        _, code, out = run(engine, "cat /mnt/in && echo back > /mnt/out", volumes=[f"{host}:/mnt"])
        assert code == 0 and out == "from host\n" and (host / "out").read_text() == "back\n"
        _, code, _ = run(engine, "echo no > /mnt/no", volumes=[f"{host}:/mnt:ro"])
        assert code != 0 and not (host / "no").exists()
    finally:
        shutil.rmtree(host)


def test_new_volume_gets_the_image_content(engine):
    vols = Volumes(engine.config)
    _, code, _ = run(engine, "true", volumes=["etc:/etc"])
    assert code == 0
    assert (vols.path("etc") / "passwd").exists()


def test_bad_input_changes_nothing(engine):
    vols = Volumes(engine.config)
    before = sorted(os.listdir(vols.root))
    for bad in ("a/b:/data", "/does/not/exist/here:/data", "data:relative", "data:/data:xx", "x:/", ""):
        with pytest.raises(InvalidArgument):
            engine.create("test/busybox", ["true"], volumes=[bad])
    with pytest.raises(InvalidArgument):
        engine.create("test/busybox", ["true"], volumes=["a:/d", "b:/d"])
    with pytest.raises(InvalidArgument, match="slash"):
        vols.create("a/b")
    with pytest.raises(NotFound):
        vols.remove("missing")
    assert sorted(os.listdir(vols.root)) == before
    assert all_leftovers(engine) == []


def test_parse_mount():
    assert parse_mount("data:/d:ro").read_only and parse_mount("data:/d").kind == "volume"
    assert parse_mount("/d").kind == "anonymous"
    assert parse_mount("/tmp:/d").kind == "bind"


def test_list_prune_labels(engine):
    vols = Volumes(engine.config)
    vols.create("one", labels={"team": "a"})
    vols.create("two")
    assert vols.create("one")["Labels"] == {"team": "a"}  # idempotent, as Docker
    c = engine.create("test/busybox", ["true"], volumes=["two:/two"])
    assert [v["Name"] for v in vols.list(filters={"label": ["team=a"]})] == ["one"]
    assert [v["Name"] for v in vols.list(filters={"dangling": ["true"]}) if not v["Anonymous"]] == ["one"]
    removed, _ = vols.prune()
    assert "one" in removed and "two" not in removed
    engine.remove(c.id)
    vols.prune()
    assert vols.names() == []
