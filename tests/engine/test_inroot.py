"""Paths resolved inside a root: openat2 and the userspace walk agree, and neither ever
reaches a host file outside the root (a canary next to it), whatever the tree holds."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.base import inroot
from engine.base.inroot import BENEATH, IN_ROOT, NO_SYMLINKS, Root

RESOLVERS = ["openat2", "walk"] if inroot.openat2_available() else ["walk"]


@pytest.fixture(params=RESOLVERS)
def resolver(request):
    old = inroot.use_openat2(request.param == "openat2")
    yield request.param
    inroot.use_openat2(old)


@pytest.fixture
def tree(tmp_path):
    """root/ with links that try to leave it; host/ beside it holds the canary."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "canary").write_text("host secret\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "escape").symlink_to("/")
    (root / "up").symlink_to("../../..")
    (root / "hostdir").symlink_to(str(host))
    (root / "app").symlink_to("/srv/app")
    (root / "srv" / "app").mkdir(parents=True)
    (root / "loop").symlink_to("loop")
    (root / "dangling").symlink_to("/etc/new")
    return root, host


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def test_symlinks_resolve_inside_the_root(tree, resolver):
    root, host = tree
    with Root(root) as r:
        assert r.open("/escape/etc/passwd").read().startswith(b"root:x")
        assert r.open("up/up/etc/passwd").read().startswith(b"root:x")
        assert r.resolve("/escape/etc/../etc/passwd") == "/etc/passwd"
        assert r.resolve("app/new/file") == "/srv/app/new/file"
        assert r.resolve("/../../..") == "/"
        assert r.resolve("escape", follow_last=False) == "/escape"
        with pytest.raises(FileNotFoundError):
            r.open("hostdir/canary")  # the host path, taken inside the root: not there
        with pytest.raises(FileNotFoundError):
            r.open(f"{host}/canary")
        with pytest.raises(OSError) as exc:
            r.open("loop")
        assert exc.value.errno == errno.ELOOP
        assert stat.S_ISLNK(r.lstat("escape").st_mode) and stat.S_ISDIR(r.stat("escape").st_mode)
        with r.open("dangling", "wb") as f:  # created where the link points, inside the root
            f.write(b"x")
    assert (root / "etc" / "new").read_bytes() == b"x"
    assert (host / "canary").read_text() == "host secret\n"


def test_o_excl_never_follows_a_dangling_symlink(tree, resolver):
    root, _ = tree
    with Root(root) as r, pytest.raises(FileExistsError):
        r.open_fd("dangling", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    assert not (root / "etc" / "new").exists()


def test_mkdirs_follows_links_inside_the_root(tree, resolver):
    root, host = tree
    with Root(root) as r:
        fd = r.mkdirs("/escape/tmp/a/../b/c")
        try:
            assert _fd_path(fd) == str(root / "tmp" / "b" / "c")
        finally:
            os.close(fd)
        os.close(r.mkdirs("hostdir/x"))
        os.close(r.mkdirs("app/data"))
    assert (root / host.relative_to("/") / "x").is_dir() and not (host / "x").exists()
    assert (root / "srv" / "app" / "data").is_dir()


def test_beneath_refuses_what_leaves_and_no_symlinks_refuses_links(tree, resolver):
    root, _ = tree
    (root / "rel").symlink_to("etc")
    with Root(root, BENEATH) as r:
        assert r.open("rel/passwd").read().startswith(b"root:x")
        for path in ("escape/etc/passwd", "up/etc", "../etc/passwd", "app"):
            with pytest.raises(OSError) as exc:
                r.open_fd(path, os.O_PATH)
            assert exc.value.errno == errno.EXDEV, path
    with Root(root, NO_SYMLINKS) as r:
        with pytest.raises(OSError) as exc:
            r.open("rel/passwd")
        assert exc.value.errno == errno.ELOOP
        assert stat.S_ISLNK(r.lstat("rel").st_mode)
        dir_fd, name = r.parent("etc/passwd")
        os.close(dir_fd)
        assert name == "passwd"


def test_a_nul_byte_is_refused(tree, resolver):
    root, _ = tree
    with Root(root) as r, pytest.raises(OSError):
        r.open("etc/passwd\0/x")


def test_walk_never_follows_a_symlink(tree):
    root, host = tree
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        seen = {path: st for path, _, _, st in inroot.walk(fd)}
    finally:
        os.close(fd)
    assert "etc/passwd" in seen and "srv/app" in seen and stat.S_ISLNK(seen["escape"].st_mode)
    assert not any("canary" in p for p in seen)


# ---------------------------------------------------------------- property: hostile trees

NAMES = st.sampled_from(["a", "b", "c", "..", ".", "etc"])
REL = st.lists(NAMES, min_size=1, max_size=4).map("/".join)


def _targets(host: str):
    return st.one_of(REL, REL.map(lambda p: "/" + p), st.sampled_from(["/", host, host + "/canary", "../" * 6]))


@st.composite
def hostile_trees(draw):
    """A list of (path, kind, target) to create in order, and paths to look up."""
    host = "/HOST"
    items = draw(st.lists(st.tuples(REL, st.sampled_from(["dir", "file", "symlink"]), _targets(host)),
                          max_size=12))
    lookups = draw(st.lists(st.one_of(REL, _targets(host)), min_size=1, max_size=6))
    return items, lookups


def _build(root: Path, host: Path, items) -> None:
    """Make the generated tree (with plain host calls: never through one of its links)."""
    for path, kind, target in items:
        full = Path(os.path.normpath(root / path))
        if not str(full).startswith(str(root) + "/"):
            continue
        prefixes = [root.joinpath(*full.relative_to(root).parts[:n]) for n in range(1, len(full.relative_to(root).parts))]
        if any(p.is_symlink() or p.exists() and not p.is_dir() for p in prefixes):
            continue
        target = target.replace("/HOST", str(host))
        try:
            full.parent.mkdir(parents=True, exist_ok=True)
            if kind == "dir":
                full.mkdir()
            elif kind == "file":
                os.close(os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW))
            else:
                full.symlink_to(target)
        except OSError:
            continue  # already there


def _outcome(root_path: Path, policy: str, lookup: str, op: str):
    """What the lookup gives: the inode it reached, or the errno; and the fd's host path."""
    with Root(root_path, policy) as r:
        try:
            if op == "open":
                fd = r.open_fd(lookup, os.O_PATH)
            elif op == "create":
                fd = r.open_fd(lookup, os.O_WRONLY | os.O_CREAT, 0o644)
            elif op == "nofollow":
                fd = r.open_fd(lookup, os.O_PATH, follow_last=False)
            else:
                fd = r.open_dir(lookup)
        except OSError as exc:
            return ("error", exc.errno), None
        try:
            st_ = os.fstat(fd)
            return ("ok", st_.st_ino), _fd_path(fd)
        finally:
            os.close(fd)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=hostile_trees(), policy=st.sampled_from([IN_ROOT, BENEATH, NO_SYMLINKS]),
       op=st.sampled_from(["open", "nofollow", "dir", "create"]))
def test_property_openat2_and_the_walk_agree_and_stay_inside(case, policy, op):
    items, lookups = case
    base = Path(tempfile.mkdtemp(prefix="inroot-"))
    try:
        host = base / "host"
        host.mkdir()
        (host / "canary").write_text("secret")
        root = base / "root"
        root.mkdir()
        _build(root, host, items)
        canary_ino = (host / "canary").stat().st_ino
        for lookup in [x.replace("/HOST", str(host)) for x in lookups]:
            results = []
            for use in RESOLVERS:
                old = inroot.use_openat2(use == "openat2")
                try:
                    outcome, where = _outcome(root, policy, lookup, op)
                finally:
                    inroot.use_openat2(old)
                if where is not None:
                    assert where == str(root) or where.startswith(str(root) + "/"), (lookup, where)
                assert outcome != ("ok", canary_ino)
                results.append(outcome)
            assert len(set(results)) == 1, (lookup, policy, op, results)
            if policy == IN_ROOT and results[0][0] == "ok" and op in ("open", "nofollow"):  # resolve() names the same
                with Root(root) as r:
                    name = r.resolve(lookup, follow_last=op != "nofollow")
                    assert r.with_policy(NO_SYMLINKS).lstat(name).st_ino == results[0][1]
        assert (host / "canary").read_text() == "secret"
    finally:
        shutil.rmtree(base)
