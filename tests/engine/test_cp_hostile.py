"""cp in and out, export and commit never reach the host through a container's symlinks,
``..`` or a directory swapped for a symlink while it is read (issue 12). A canary file
outside the container's root must stay unread and unwritten; symlinks keep working inside
the container."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.build import commit as cm
from engine.errors import InvalidArgument, NotFound
from tests.support.containers import cleanup, make_engine

SECRET = b"berth-cp-canary-secret"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A host directory with the canary, outside every root."""
    directory = tmp_path_factory.mktemp("host")
    (directory / "canary").write_bytes(SECRET + b"\n")
    return directory


@pytest.fixture(scope="module")
def box(host):
    """An exited container whose root has links that try to leave it."""
    eng, _ = make_engine()
    script = (f"mkdir -p /data/sub {host} && echo inside > /data/sub/f && ln -s / /escape && "
              f"ln -s {host} /hostlink && ln -s /data /link && ln -s ../../.. /data/up && echo own > {host}/own")
    c, code = eng.run("test/busybox", ["sh", "-c", script], detach=False)
    assert code == 0
    yield eng, c.id, Path(eng.get(c.id).config["Rootfs"])
    cleanup(eng)


def snapshot(host: Path):
    canary = host / "canary"
    st_ = os.stat(canary)
    return canary.read_bytes(), st_.st_nlink, st_.st_mtime_ns, st_.st_mode, sorted(p.name for p in host.iterdir())


def tar_bytes(out: io.BytesIO) -> bytes:
    return out.getvalue()


@pytest.mark.parametrize("path", ["/escape{host}/canary", "/../../..{host}/canary", "/hostlink/canary",
                                  "/data/up{host}/canary", "/data/../../../..{host}/canary", "/link/../escape{host}"])
def test_cp_out_through_symlinks_and_dotdot_stays_in_the_container(box, host, tmp_path, path):
    eng, cid, _ = box
    before = snapshot(host)
    path = path.format(host=host)
    out = io.BytesIO()
    try:
        cm.copy_from(eng, cid, path, out)
    except NotFound:
        pass
    assert SECRET not in out.getvalue()
    with pytest.raises(NotFound):
        cm.copy_out(eng, cid, path.replace("canary", "missing") if "canary" in path else path + "/missing",
                    str(tmp_path / "x"))
    assert snapshot(host) == before


def test_cp_out_of_a_symlinked_path_follows_it_inside_the_container(box, host, tmp_path):
    eng, cid, _ = box
    cm.copy_out(eng, cid, "/link/sub/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "inside\n"
    cm.copy_out(eng, cid, "/hostlink/own", str(tmp_path / "own"))  # the container's {host}, not the host's
    assert (tmp_path / "own").read_text() == "own\n"
    cm.copy_out(eng, cid, "/link", str(tmp_path / "tree"))
    assert (tmp_path / "tree" / "sub" / "f").read_text() == "inside\n"
    assert os.readlink(tmp_path / "tree" / "up") == "../../.."  # copied as a symlink


def test_cp_in_through_symlinks_lands_inside_the_container(box, host, tmp_path):
    eng, cid, rootfs = box
    before = snapshot(host)
    src = tmp_path / "canary"
    src.write_text("from the host side\n")
    cm.copy_in(eng, cid, str(src), "/hostlink")  # the container's {host}: its own "canary"
    cm.copy_in(eng, cid, str(src), f"/escape{host}/other")
    cm.copy_in(eng, cid, str(src), f"/data/up/../../..{host}/third")
    inside = rootfs / str(host).lstrip("/")
    assert (inside / "canary").read_text() == (inside / "other").read_text() == "from the host side\n"
    assert (inside / "third").read_text() == "from the host side\n"
    assert snapshot(host) == before
    with pytest.raises(NotFound):
        cm.copy_in(eng, cid, str(src), "/escape/no/such/dir/x")


@pytest.mark.parametrize("entries", [
    [("h", "hardlink", "{host}/canary")],
    [("s", "symlink", "/"), ("s{host}/canary", "file", b"overwritten\n")],
    [("s", "symlink", "{host}"), ("s/canary", "file", b"overwritten\n")],
    [("../../../..{host}/canary", "file", b"overwritten\n")],
], ids=["hardlink to the host", "symlink to / then a file", "symlink to the host dir then a file", "dotdot"])
def test_cp_of_a_hostile_tar_into_a_container_is_refused(box, host, entries):
    eng, cid, _ = box
    before = snapshot(host)
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name.format(host=host))
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
            else:
                info.type = tarfile.LNKTYPE if kind == "hardlink" else tarfile.SYMTYPE
                info.linkname = value.format(host=host)
                tar.addfile(info)
    data.seek(0)
    with pytest.raises(InvalidArgument):
        cm.copy_to(eng, cid, "/data", data)
    assert snapshot(host) == before


def _swap_on(monkeypatch, rootfs: Path, host: Path, trigger: str, target: str) -> None:
    """When the tar header ``trigger`` is written, the container swaps ``target`` (a
    directory) for a symlink to the host directory: the race of a running container."""
    real_addfile = tarfile.TarFile.addfile

    def addfile(self, tarinfo, fileobj=None):
        result = real_addfile(self, tarinfo, fileobj)
        if tarinfo.name == trigger and not (rootfs / target).is_symlink():
            os.rename(rootfs / target, rootfs / (target + ".moved"))
            os.symlink(str(host), rootfs / target)
        return result

    monkeypatch.setattr(tarfile.TarFile, "addfile", addfile)


def _restore(rootfs: Path, target: str) -> None:
    if (rootfs / target).is_symlink():
        os.unlink(rootfs / target)
        os.rename(rootfs / (target + ".moved"), rootfs / target)


def test_a_directory_swapped_for_a_symlink_during_cp_out_is_not_followed(box, host, monkeypatch):
    eng, cid, rootfs = box
    before = snapshot(host)
    _swap_on(monkeypatch, rootfs, host, "data/sub", "data/sub")
    out = io.BytesIO()
    try:
        cm.copy_from(eng, cid, "/data", out)
    finally:
        monkeypatch.undo()
        _restore(rootfs, "data/sub")
    assert SECRET not in out.getvalue()
    assert snapshot(host) == before


def test_a_directory_swapped_for_a_symlink_during_export_is_not_followed(box, host, monkeypatch):
    eng, cid, rootfs = box
    _swap_on(monkeypatch, rootfs, host, "data/sub", "data/sub")
    out = io.BytesIO()
    try:
        cm.export(eng, cid, out)
    finally:
        monkeypatch.undo()
        _restore(rootfs, "data/sub")
    assert SECRET not in out.getvalue()


def test_export_and_commit_keep_symlinks_as_symlinks(box, host):
    eng, cid, _ = box
    out = io.BytesIO()
    cm.export(eng, cid, out)
    assert SECRET not in out.getvalue()
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        escape = tar.getmember("escape")
        assert escape.issym() and escape.linkname == "/"
        assert tar.extractfile("data/sub/f").read() == b"inside\n"
    image = cm.commit(eng, cid, "test/hostile-commit:1")
    with eng.images.content.open(image.layers[-1].digest) as blob:
        layer = gzip.decompress(blob.read())
    assert SECRET not in layer and b"escape" in layer


# ---------------------------------------------------------------- property: cp paths

_PARTS = st.sampled_from(["escape", "hostlink", "link", "data", "up", "sub", "f", "..", ".", "HOST", "canary"])
_CP_PATHS = st.lists(_PARTS, min_size=1, max_size=6).map(lambda p: "/" + "/".join(p))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths=st.lists(_CP_PATHS, min_size=1, max_size=4), into=st.booleans())
def test_property_cp_paths_never_reach_the_canary(box, host, tmp_path_factory, paths, into):
    eng, cid, _ = box
    before = snapshot(host)
    scratch = tmp_path_factory.mktemp("cp")
    source = scratch / "canary"
    source.write_text("from the host side\n")
    for path in paths:
        path = path.replace("HOST", str(host).lstrip("/"))
        out = io.BytesIO()
        try:
            if into:
                cm.copy_in(eng, cid, str(source), path)
            else:
                cm.copy_from(eng, cid, path, out)
        except (NotFound, InvalidArgument):
            pass
        assert SECRET not in out.getvalue()
    assert snapshot(host) == before


def test_hard_links_inside_the_container_survive_cp_in_and_out(box, tmp_path):
    eng, cid, _ = box
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("pair/one")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"one\n"))
        link = tarfile.TarInfo("pair/two")
        link.type, link.linkname = tarfile.LNKTYPE, "pair/one"
        tar.addfile(link)
    data.seek(0)
    cm.copy_to(eng, cid, "/data", data)
    cm.copy_out(eng, cid, "/data/pair", str(tmp_path / "renamed"))
    one, two = tmp_path / "renamed" / "one", tmp_path / "renamed" / "two"
    assert one.read_text() == "one\n" and os.stat(one).st_ino == os.stat(two).st_ino
