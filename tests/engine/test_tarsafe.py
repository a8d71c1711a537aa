"""Extraction of outside tars stays inside its target, with Python's filters (3.11.4+)
and with the checks used where they are missing (Debian 12's 3.11.2)."""

import io
import tarfile

import pytest

from engine import tarsafe
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


# Python's own filters are tested where this Python has them; our checks everywhere.
MODES = ["own checks"] + (["filters"] if tarsafe.HAS_FILTERS else [])


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    if request.param == "own checks":
        monkeypatch.setattr(tarsafe, "HAS_FILTERS", False)
    return request.param


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
