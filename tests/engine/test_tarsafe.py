"""Extraction of outside tars stays inside its target, on every Python (one implementation,
no extraction filters), with openat2 and with the userspace walk of engine.inroot."""

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.base import inroot, tarsafe
from engine.errors import InvalidArgument


def make_tar(*entries) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = value
                tar.addfile(info)
    data.seek(0)
    return data


MODES = ["openat2", "walk"] if inroot.openat2_available() else ["walk"]


@pytest.fixture(params=MODES)
def mode(request):
    old = inroot.use_openat2(request.param == "openat2")
    yield request.param
    inroot.use_openat2(old)


def extract(data, target, trusted=False):
    with tarfile.open(fileobj=data, mode="r|") as tar:
        tarsafe.extract_all(tar, target, trusted_links=trusted)


def test_ordinary_tar_extracts(tmp_path, mode):
    extract(make_tar(("dir/a.txt", "file", b"hello"), ("dir/link", "symlink", "a.txt")), tmp_path / "out")
    assert (tmp_path / "out/dir/a.txt").read_text() == "hello"
    assert (tmp_path / "out/dir/link").read_text() == "hello"


@pytest.mark.parametrize("entries", [
    [("../escape.txt", "file", b"x")],
    [("a", "symlink", "/tmp"), ("a/escape.txt", "file", b"x")],
    [("a", "symlink", "../.."), ("a/escape.txt", "file", b"x")],
    [("h", "hardlink", "../../etc/passwd")],
], ids=["dotdot", "absolute symlink then file", "climbing symlink then file", "hardlink outside"])
def test_escapes_are_refused_and_nothing_is_written_outside(tmp_path, mode, entries):
    target = tmp_path / "deep" / "out"
    target.mkdir(parents=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises((InvalidArgument, tarfile.TarError)):
        extract(make_tar(*entries), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "deep" / "escape.txt").exists()


# ---------------------------------------------------------------- hard links to the host

def test_a_hardlink_to_an_absolute_host_path_then_a_file_leaves_the_host_file_alone(tmp_path, mode):
    """Issue 12, item 1: ``hl`` linked to a host file, then a regular file ``hl``: tarfile
    would link to the host file itself and then write through the link."""
    canary = tmp_path / "host" / "canary"
    canary.parent.mkdir()
    canary.write_text("host secret\n")
    os.chmod(canary, 0o600)
    before = os.stat(canary)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(InvalidArgument, match="hl"):
        extract(make_tar(("hl", "hardlink", str(canary)), ("hl", "file", b"overwritten\n")), target)
    after = os.stat(canary)
    assert canary.read_text() == "host secret\n"
    assert (after.st_mode, after.st_uid, after.st_nlink, after.st_mtime_ns) == \
        (before.st_mode, before.st_uid, before.st_nlink, before.st_mtime_ns)
    assert not (target / "hl").exists()


def test_a_hardlink_inside_the_archive_still_works_and_names_are_rooted(tmp_path, mode):
    target = tmp_path / "out"
    # (names that exist nowhere on the host: a broken extractor must not link host files)
    extract(make_tar(("berth-nowhere/f", "file", b"first\n"), ("again", "hardlink", "/berth-nowhere/f"),
                     ("berth-nowhere/f", "file", b"replaced\n")), target)
    # the file written after the link replaces the entry; the link keeps the old content
    assert (target / "again").read_bytes() == b"first\n"
    assert (target / "berth-nowhere/f").read_bytes() == b"replaced\n"


@pytest.mark.parametrize("entries", [
    [("h", "hardlink", "/berth-nowhere/f")],
    [("l", "symlink", "sub"), ("h", "hardlink", "l/x")],
], ids=["to a path not in the archive", "through a symlink"])
def test_hardlinks_must_name_an_entry_inside_reached_without_symlinks(tmp_path, mode, entries):
    target = tmp_path / "out"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "x").write_text("x")
    with pytest.raises(InvalidArgument):
        extract(make_tar(*entries), target)
    assert not (target / "h").exists()


def test_trusted_links_keep_absolute_symlinks_but_never_write_through_them(tmp_path, mode):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "out"
    target.mkdir()
    extract(make_tar(("abs", "symlink", str(outside))), target, trusted=True)
    assert os.readlink(target / "abs") == str(outside)
    for entries in ([("abs/x", "file", b"x")], [("abs", "file", b"x"), ("abs2", "hardlink", str(outside))]):
        with pytest.raises(InvalidArgument):
            extract(make_tar(*entries), target, trusted=True)
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------- property: hostile tars

_NAMES = st.lists(st.sampled_from(["a", "b", "hl", "..", ".", "CANARY_DIR", ""]), min_size=1, max_size=4).map("/".join)
_LINKS = st.one_of(_NAMES, _NAMES.map(lambda n: "/" + n), st.sampled_from(["CANARY", "CANARY_DIR", "/"]))
_ENTRIES = st.lists(st.tuples(_NAMES, st.sampled_from(["file", "dir", "symlink", "hardlink"]), _LINKS),
                    min_size=1, max_size=8)


@pytest.mark.root  # a trusted tar may chown and make devices
@settings(max_examples=120, deadline=None)
@given(entries=_ENTRIES, trusted=st.booleans())
def test_property_hostile_tars_never_touch_the_canary(entries, trusted):
    base = Path(tempfile.mkdtemp(prefix="tarsafe-"))
    try:
        host = base / "host"
        host.mkdir()
        canary = host / "canary"
        canary.write_text("host secret\n")
        before = os.stat(canary)
        target = base / "deep" / "out"
        target.mkdir(parents=True)
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            for name, kind, link in entries:
                name = name.replace("CANARY_DIR", str(host).lstrip("/"))
                link = link.replace("CANARY_DIR", str(host)).replace("CANARY", str(canary))
                info = tarfile.TarInfo(name or ".")
                if kind == "file":
                    payload = b"overwritten\n"
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
                    continue
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
                info.linkname = link if kind != "dir" else ""
                tar.addfile(info)
        data.seek(0)
        try:
            extract(data, target, trusted=trusted)
        except InvalidArgument:
            pass
        after = os.stat(canary)
        assert canary.read_text() == "host secret\n"
        assert (after.st_ino, after.st_nlink, after.st_mode, after.st_mtime_ns, after.st_uid) == \
            (before.st_ino, before.st_nlink, before.st_mode, before.st_mtime_ns, before.st_uid)
        assert sorted(p.name for p in host.iterdir()) == ["canary"]
        assert sorted(p.name for p in base.iterdir()) == ["deep", "host"]
        assert sorted(p.name for p in (base / "deep").iterdir()) == ["out"]
    finally:
        shutil.rmtree(base)
