"""Builds never touch the host (issue 12): hostile contexts, COPY --from through a stage's
symlinks, ADD of hostile archives, WORKDIR and COPY destinations through symlinks to "/".

Each test keeps a canary file in a directory outside every root; it must stay unread (its
content is in no layer the build stored) and unwritten. Symlinks in images keep working
inside the image, as Docker's do.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.build.builder import Builder
from engine.errors import InvalidArgument
from tests.support.containers import cleanup, make_engine

SECRET = b"berth-host-canary-secret"


@pytest.fixture(scope="module")
def engine():
    eng, _ = make_engine()
    yield eng
    cleanup(eng)


@pytest.fixture
def canary(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    path = host / "canary"
    path.write_bytes(SECRET + b"\n")
    os.chmod(path, 0o600)
    return path


def _snapshot(canary: Path):
    st_ = os.stat(canary)
    return (canary.read_bytes(), st_.st_mode, st_.st_uid, st_.st_nlink, st_.st_mtime_ns,
            sorted(p.name for p in canary.parent.iterdir()))


def assert_untouched(engine, canary: Path, before) -> None:
    assert _snapshot(canary) == before, "the host canary was written"
    blobs = engine.images.content.blob_dir
    for blob in blobs.iterdir():
        data = blob.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        assert SECRET not in data, f"the host canary was read into {blob.name}"


def build(engine, context, **kw):
    lines: list[str] = []
    builder = Builder(engine.config, engine, on_line=lines.append, network="none")
    try:
        return builder.build(context, **kw)
    finally:
        build.lines = lines


def tar_of(*entries) -> io.BytesIO:
    """A tar from (name, kind, value): file (bytes), dir, symlink / hardlink (target)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size, info.mode = len(value), 0o644
                tar.addfile(info, io.BytesIO(value))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
            info.mode = 0o755
            if kind != "dir":
                info.linkname = value
            tar.addfile(info)
    data.seek(0)
    return data


def run_out(engine, image, cmd: str) -> tuple[int, str]:
    c, code = engine.run(image.id, ["sh", "-c", cmd], detach=False, network="none")
    out = "".join(r["log"] for r in engine.logs(c.id))
    engine.remove(c.id)
    return code, out


# ---------------------------------------------------------------- item 1: context hard links

def test_a_context_hardlink_to_a_host_file_then_a_file_writes_nothing(engine, canary):
    before = _snapshot(canary)
    context = tar_of(("Dockerfile", "file", b"FROM test/busybox\nCOPY hl /x\n"),
                     ("hl", "hardlink", str(canary)), ("hl", "file", b"overwritten\n"))
    with pytest.raises(InvalidArgument, match="hl"):
        build(engine, context)
    assert_untouched(engine, canary, before)


def test_a_context_hardlink_to_a_host_file_is_not_copied(engine, canary):
    before = _snapshot(canary)
    context = tar_of(("Dockerfile", "file", b"FROM test/busybox\nCOPY hl /x\n"), ("hl", "hardlink", str(canary)))
    with pytest.raises(InvalidArgument):
        build(engine, context)
    assert_untouched(engine, canary, before)


def test_a_context_hardlink_inside_the_context_still_works(engine):
    context = tar_of(("Dockerfile", "file", b"FROM test/busybox\nCOPY a b /d/\n"),
                     ("a", "file", b"same\n"), ("b", "hardlink", "/a"))
    image = build(engine, context)
    assert run_out(engine, image, "cat /d/a /d/b") == (0, "same\nsame\n")


# ---------------------------------------------------------------- item 2: COPY --from symlinks

def test_copy_from_a_stage_never_follows_its_symlinks_onto_the_host(engine, tmp_path, canary):
    before = _snapshot(canary)
    for source in (f"/escape{canary}", f"/escape{canary.parent}/", f"/escape{canary.parent}/*",
                   f"/rel{canary}", f"/hostlink/{canary.name}"):
        ctx = tmp_path / f"ctx{abs(hash(source))}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"FROM test/busybox AS s\nRUN ln -s / /escape && ln -s ../.. /rel && ln -s {canary.parent} /hostlink\n"
            f"FROM test/busybox\nCOPY --from=s {source} /loot\n")
        with pytest.raises(InvalidArgument, match="no such file"):
            build(engine, ctx)
    assert_untouched(engine, canary, before)


def test_copy_from_follows_a_stage_symlink_inside_the_stage(engine, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM test/busybox AS s\nRUN mkdir -p /data/sub && echo in-stage > /data/sub/f && ln -s /data /link "
        "&& ln -s /data/sub/f /data/abs\n"
        "FROM test/busybox\nCOPY --from=s /link/sub/f /one\nCOPY --from=s /link/abs /two\nCOPY --from=s /link /tree\n")
    image = build(engine, ctx)
    code, out = run_out(engine, image, "cat /one /two /tree/sub/f; readlink /tree/abs")
    assert (code, out) == (0, "in-stage\nin-stage\nin-stage\n/data/sub/f\n")


# ---------------------------------------------------------------- ADD of hostile archives

@pytest.mark.parametrize("archive", [
    [("h", "hardlink", "CANARY")],
    [("s", "symlink", "/"), ("s/CANARY_REL", "file", b"overwritten\n")],
    [("s", "symlink", "CANARY_DIR"), ("s/canary", "file", b"overwritten\n")],
    [("../../../../../../CANARY_REL", "file", b"overwritten\n")],
    [("s", "symlink", "CANARY"), ("h", "hardlink", "s")],
], ids=["hardlink to the host", "symlink to / then a file", "symlink to the host dir then a file",
        "dotdot", "hardlink to a symlink to the host"])
def test_add_of_a_hostile_archive_touches_nothing_on_the_host(engine, tmp_path, canary, archive):
    before = _snapshot(canary)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    entries = [(n.replace("CANARY_REL", str(canary).lstrip("/")), k,
                v.replace("CANARY_DIR", str(canary.parent)).replace("CANARY", str(canary)) if isinstance(v, str) else v)
               for n, k, v in archive]
    (ctx / "evil.tar").write_bytes(tar_of(*entries).getvalue())
    (ctx / "Dockerfile").write_text("FROM test/busybox\nADD evil.tar /opt/\nRUN cat /opt/h /opt/s/canary || true\n")
    try:
        image = build(engine, ctx)
    except InvalidArgument:
        image = None
    if image is not None:
        code, out = run_out(engine, image, "cat /opt/h /opt/s/canary 2>/dev/null; true")
        assert SECRET.decode() not in out
    assert_untouched(engine, canary, before)


# ---------------------------------------------------------------- WORKDIR and destinations

def test_workdir_and_copy_destinations_through_a_symlink_to_root_stay_in_the_image(engine, tmp_path, canary):
    before = _snapshot(canary)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("copied\n")
    host = canary.parent
    (ctx / "Dockerfile").write_text(
        f"FROM test/busybox\nRUN ln -s / /escape\nWORKDIR /escape{host}/made\nCOPY f rel\n"
        f"COPY f /escape{host}/canary\nCOPY f /escape{host}/new/\nRUN pwd && ls\n")
    image = build(engine, ctx)
    code, out = run_out(engine, image, f"cat {host}/made/rel {host}/canary {host}/new/f")
    assert (code, out) == (0, "copied\ncopied\ncopied\n")
    assert image.config["config"]["WorkingDir"] == f"/escape{host}/made"
    assert_untouched(engine, canary, before)


def test_copy_into_a_directory_symlinked_in_the_image_lands_at_its_target(engine, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("here\n")
    (ctx / "Dockerfile").write_text("FROM test/busybox\nRUN mkdir -p /srv/app && ln -s /srv/app /app\n"
                                    "COPY f /app/\nCOPY f /app/sub/g\n")
    image = build(engine, ctx)
    code, out = run_out(engine, image, "test -L /app && cat /srv/app/f /srv/app/sub/g")
    assert (code, out) == (0, "here\nhere\n")


def test_chown_names_come_from_the_image_even_when_its_etc_is_a_symlink(engine, tmp_path, canary):
    (canary.parent / "passwd").write_text("evil:x:4242:4242::/:/bin/sh\n")
    (canary.parent / "group").write_text("evil:x:4242:\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("f\n")
    (ctx / "etc.tar").write_bytes(tar_of(("etc", "symlink", str(canary.parent))).getvalue())
    (ctx / "Dockerfile").write_text("FROM scratch\nADD etc.tar /\nCOPY --chown=evil f /f\n")
    with pytest.raises(InvalidArgument, match="unable to find user evil"):
        build(engine, ctx)


# ---------------------------------------------------------------- property: hostile builds

_NAMES = st.sampled_from(["a", "b", "esc", "HOST", "canary"])
_PATHS = st.lists(st.one_of(_NAMES, st.sampled_from(["..", ".", "*"])), min_size=1, max_size=5).map(
    lambda p: "/" + "/".join(p))
_MEMBER_NAMES = st.lists(_NAMES, min_size=1, max_size=3).map("/".join)
_LINKS = st.one_of(_PATHS, _PATHS.map(lambda p: p.lstrip("/")),
                   st.sampled_from(["/", "..", "../..", "../../..", "@HOST", "@HOST/canary"]))
_MEMBERS = st.lists(st.tuples(_MEMBER_NAMES, st.sampled_from(["file", "dir", "symlink", "hardlink"]), _LINKS),
                    max_size=6)


def _fill(text: str, host: Path) -> str:
    return text.replace("@HOST", str(host)).replace("HOST", str(host).lstrip("/"))


def _make_context_dir(ctx: Path, members, host: Path) -> None:
    """A context directory with what a CLI user's own directory may hold: any symlink."""
    for name, kind, link in members:
        path = ctx / _fill(name, host)
        try:
            if any(p.is_symlink() or p.exists() and not p.is_dir() for p in [*path.parents][:-1]
                   if str(p).startswith(str(ctx))):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "dir":
                path.mkdir()
            elif kind == "file":
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW))
            elif kind == "symlink":
                path.symlink_to(_fill(link, host))
        except OSError:
            continue


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(context=_MEMBERS, layer=_MEMBERS, source=_PATHS, dest=_PATHS, from_stage=st.booleans())
def test_property_hostile_contexts_archives_and_paths_never_reach_the_canary(engine, tmp_path_factory, context,
                                                                               layer, source, dest, from_stage):
    """A stage made from a hostile archive (ADD), a context directory full of hostile
    symlinks, and COPY (from either) with generated paths: whatever the build does, the
    canary stays unread and unwritten."""
    base = tmp_path_factory.mktemp("hostile")
    host = base / "host"
    host.mkdir()
    canary = host / "canary"
    canary.write_bytes(SECRET + b"\n")
    before = _snapshot(canary)
    ctx = base / "ctx"
    ctx.mkdir()
    _make_context_dir(ctx, context, host)
    members = [(_fill(n, host), k, b"data\n" if k == "file" else _fill(v, host)) for n, k, v in layer]
    (ctx / "stage.tar").write_bytes(tar_of(*members).getvalue())
    src, dst = _fill(source, host), _fill(dest, host)
    copy = f"COPY --from=s {src} {dst}" if from_stage else f"COPY {src.lstrip('/') or '.'} {dst}"
    (ctx / "Dockerfile").write_text(f"FROM scratch AS s\nADD stage.tar /\nFROM s\n{copy}\n"
                                    f"WORKDIR {dst}/w\nCOPY Dockerfile {dst}/\n")
    try:
        build(engine, ctx)
    except InvalidArgument:
        pass
    assert_untouched(engine, canary, before)


def test_workdir_makes_its_directory_inside_the_image_without_a_run(engine, tmp_path, canary):
    before = _snapshot(canary)
    host = canary.parent
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM test/busybox AS s\nRUN ln -s / /escape\nWORKDIR /escape{host}/w\n"
                                    f"FROM test/busybox\nCOPY --from=s {host}/w /copied/\n")
    build(engine, ctx)  # the stage's WORKDIR made {host}/w inside the stage: COPY finds it
    assert sorted(p.name for p in host.iterdir()) == ["canary"]
    assert_untouched(engine, canary, before)
