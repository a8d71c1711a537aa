"""Container root filesystems: overlay mounts over unpacked layers, and the copy fallback."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument, NotFound, RuntimeFailure
from engine.images.layers import apply_layer
from engine.snapshots.snapshotter import Change, Snapshotter, mount_points
from tests.engine.test_layers import (
    apply_flat,
    apply_overlay,
    entry,
    make_tar,
    overlay_safe,
    stack_layers,
    tree,
)


@pytest.fixture
def config(tmp_path):
    config = EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run")
    yield config
    # Whatever a test did, no mount survives it; a leftover mount fails the test.
    leftovers = [m for m in mount_points() if m.startswith(str(tmp_path))]
    for mountpoint in reversed(leftovers):
        subprocess.run(["umount", "-l", mountpoint], capture_output=True)
    assert leftovers == []


@pytest.fixture
def stack(tmp_path):
    """The three-layer stack of test_layers, unpacked for overlay and flattened for reference."""
    layers = overlay_safe(stack_layers())
    apply_flat(layers, tmp_path / "flat")
    return apply_overlay(layers, tmp_path / "layers"), tree(tmp_path / "flat"), layers


def test_the_probe_picks_overlay_here_and_records_it(config):
    assert Snapshotter(config).driver == "overlay"
    assert (config.root / "snapshots/.driver").read_text() == "overlay\n"
    # Another process reads the record instead of mounting a test overlay again: a record
    # saying "copy" (as an operator may write, to force it) is what it goes by.
    (config.root / "snapshots/.driver").write_text("copy\n")
    out = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path;"
                          "from engine.config import EngineConfig; from engine.snapshots.snapshotter import Snapshotter;"
                          "print(Snapshotter(EngineConfig(Path(sys.argv[1]), Path(sys.argv[2]))).driver)",
                          str(config.root), str(config.run_root)],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    assert out.stdout == "copy\n"


def test_overlay_rootfs_shows_the_layers_and_writes_go_to_upper(config, stack):
    lowers, expected, _ = stack
    lowers_before = [tree(p) for p in lowers]
    snaps = Snapshotter(config, driver="overlay")
    rootfs = snaps.prepare("c1", lowers)
    try:
        assert stat.S_IMODE(snaps.dir.stat().st_mode) == 0o700  # host users kept out
        assert snaps.is_mounted("c1") and str(rootfs) in mount_points()
        assert tree(rootfs) == expected

        (rootfs / "new-file").write_bytes(b"12345")
        (rootfs / "etc/passwd").write_bytes(b"changed\n")
        (rootfs / "lib/libc.so").unlink()
        upper = config.root / "snapshots/c1/upper"
        assert (upper / "new-file").read_bytes() == b"12345"
        assert (upper / "etc/passwd").read_bytes() == b"changed\n"
        assert [tree(p) for p in lowers] == lowers_before  # the image's layers are untouched

        changes = set(snaps.diff("c1"))
        assert {Change("A", "/new-file"), Change("C", "/etc"), Change("C", "/etc/passwd"),
                Change("C", "/lib"), Change("D", "/lib/libc.so")} == changes
        assert snaps.usage("c1") == 5 + len(b"changed\n")
    finally:
        snaps.remove("c1")
    assert not snaps.is_mounted("c1")
    assert not (config.root / "snapshots/c1").exists()
    assert list((config.root / "snapshots").iterdir()) == []
    snaps.remove("c1")  # idempotent


def test_unmount_then_mount_again_keeps_the_containers_writes(config, stack):
    lowers, _, _ = stack
    snaps = Snapshotter(config, driver="overlay")
    rootfs = snaps.prepare("c1", lowers)
    try:
        (rootfs / "kept").write_text("across remounts")
        snaps.unmount("c1")
        assert not snaps.is_mounted("c1") and os.listdir(rootfs) == []
        assert snaps.mount("c1") == rootfs
        snaps.mount("c1")  # already mounted: no second mount stacked on it
        assert mount_points().count(str(rootfs)) == 1
        assert (rootfs / "kept").read_text() == "across remounts"
        assert (rootfs / "etc/passwd").exists()
    finally:
        snaps.remove("c1")


def test_copy_driver_gives_the_same_tree_and_leaves_the_lowers_alone(config, stack):
    lowers, expected, layers = stack
    lowers_before = [tree(p) for p in lowers]
    snaps = Snapshotter(config, driver="copy")
    rootfs = snaps.prepare("c2", lowers)
    assert tree(rootfs) == expected
    assert not snaps.is_mounted("c2")
    (rootfs / "etc/passwd").write_bytes(b"changed\n")
    (rootfs / "usr/bin/su").unlink()
    assert [tree(p) for p in lowers] == lowers_before
    (rootfs / "opq").rename(rootfs / "moved")
    assert list(snaps.diff("c2")) == [
        Change("C", "/etc/passwd"), Change("A", "/moved"), Change("A", "/moved/new"),
        Change("A", "/moved/sub"), Change("A", "/moved/sub/kept"), Change("D", "/opq"),
        Change("C", "/usr/bin"), Change("D", "/usr/bin/su"),
    ]  # not su-link: only its link count changed, as the overlay driver would not see it either
    assert snaps.usage("c2") == len(b"changed\n") + len(b"only this\n") + len(b"kept\n")
    assert snaps.mount("c2") == rootfs  # nothing to mount for a copy
    snaps.remove("c2")
    assert list((config.root / "snapshots").iterdir()) == []

    # From the layer tars, applied flat, the copy driver gives the same tree again.
    from_tars = snaps.prepare("c3", [], layer_tars=[lambda d=d: io.BytesIO(d) for d in layers])
    assert tree(from_tars) == expected
    snaps.remove("c3")


def test_a_scratch_image_gets_an_empty_rootfs(config):
    snaps = Snapshotter(config, driver="overlay")
    rootfs = snaps.prepare("scratch", [])
    try:
        assert os.listdir(rootfs) == []
        (rootfs / "x").write_text("x")
    finally:
        snaps.remove("scratch")


def test_bad_input_is_a_clear_error_and_leaves_nothing(config, stack, tmp_path):
    lowers, _, _ = stack
    snaps = Snapshotter(config, driver="overlay")
    with pytest.raises(NotFound, match="snapshot nope not found"):
        snaps.mount("nope")
    with pytest.raises(NotFound):
        snaps.unmount("nope")
    with pytest.raises(NotFound):
        list(snaps.diff("nope"))
    for key in ("../escape", "", "a/b", ".hidden", "x" * 200, "abc\n"):
        with pytest.raises(InvalidArgument, match="invalid snapshot key"):
            snaps.prepare(key, lowers)
    with pytest.raises(NotFound, match="missing"):
        snaps.prepare("c1", [*lowers, tmp_path / "no-such-layer"])
    with pytest.raises(InvalidArgument, match="overlayfs stacks at most 500"):
        snaps.prepare("c1", [lowers[0]] * 501)
    assert list((config.root / "snapshots").iterdir()) == []

    snaps.prepare("c1", lowers)
    try:
        with pytest.raises(Conflict):
            snaps.prepare("c1", lowers)
        assert snaps.is_mounted("c1")  # the existing one is untouched
    finally:
        snaps.remove("c1")
    assert list((config.root / "snapshots").iterdir()) == []


def test_a_failed_copy_leaves_nothing(config, tmp_path):
    snaps = Snapshotter(config, driver="copy")
    bad = make_tar([entry("a", "symlink", link="/etc"), entry("a/passwd", data=b"x")])
    with pytest.raises(InvalidArgument, match="a/passwd"):
        snaps.prepare("c1", [], layer_tars=[lambda: io.BytesIO(bad)])
    assert list((config.root / "snapshots").iterdir()) == []


def test_many_layers_fit_in_the_mount_options(config, tmp_path):
    # 200 layers: their absolute paths would overflow the 4 KiB of mount data.
    parent = tmp_path / "many-layers-with-a-rather-long-directory-name"
    lowers = []
    for i in range(200):
        apply_layer(io.BytesIO(make_tar([entry(f"f{i:03}", data=b"%d" % i), entry("top", data=b"%d" % i)])),
                    parent / f"{i:016x}", "overlay")
        lowers.append(parent / f"{i:016x}")
    snaps = Snapshotter(config, driver="overlay")
    rootfs = snaps.prepare("deep", lowers)
    try:
        assert len(os.listdir(rootfs)) == 201
        assert (rootfs / "top").read_bytes() == b"199"  # the last layer is on top
        snaps.unmount("deep")
        snaps.mount("deep")
        assert (rootfs / "f000").read_bytes() == b"0"
    finally:
        snaps.remove("deep")


@pytest.mark.parametrize("driver", ["overlay", "copy"])
def test_a_real_image_runs_from_its_rootfs(config, driver):
    # The whole path a container takes: image store -> unpacked layers -> rootfs.
    from engine.images.layers import LayerStore
    from engine.images.store import ImageStore
    from tests.support import imagebuilder as ib

    images = ImageStore(config)
    image = ib.multilayer_image(images)
    lowers = LayerStore(config, images.content).ensure(image)
    snaps = Snapshotter(config, driver=driver)
    rootfs = snaps.prepare("app", lowers)
    try:
        def sh(script):
            return subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", script],
                                  capture_output=True, text=True, check=True).stdout

        assert sh("cat /data/keep.txt /data/changed.txt") == "keepnew"
        assert sh("ls /opt/app; ls /data") == "new.txt\nchanged.txt\nhard\nkeep.txt\nlink\n"
        assert sh("stat -c '%u:%g %a' /home/app/owned.txt") == "1000:1000 600\n"
        sh("echo written > /data/new.txt")
        assert all(not (lower / "data/new.txt").exists() for lower in lowers)
    finally:
        snaps.remove("app")
    assert list((config.root / "snapshots").iterdir()) == []


def test_clean_leftovers_removes_trash_of_killed_removes(config):
    snaps = Snapshotter(config, driver="copy")
    (snaps.dir / ".trash-c1-killed/snapshot/merged/etc").mkdir(parents=True)
    assert snaps.clean_leftovers() == 1
    assert list(snaps.dir.iterdir()) == []


def test_on_an_overlayfs_root_the_copy_driver_is_chosen_and_works(tmp_path, stack):
    # Berth inside a container: its root is on overlayfs, where overlay cannot be mounted
    # again and 0/0 whiteout devices cannot be made.
    _, expected, layers = stack
    base = tmp_path / "ovfs"
    for part in ("lower", "upper", "work", "mnt"):
        (base / part).mkdir(parents=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work", str(base / "mnt")],
                   check=True)
    try:
        config = EngineConfig(root=base / "mnt/berth", run_root=tmp_path / "run")
        snaps = Snapshotter(config)
        assert snaps.driver == "copy"
        lowers = apply_overlay(layers, config.subdir("layers"))
        assert (lowers[2] / "etc/.wh.gone").is_file()  # kept as a whiteout file here
        rootfs = snaps.prepare("c1", lowers)
        assert tree(rootfs) == expected
        snaps.remove("c1")
        assert [p.name for p in snaps.dir.iterdir()] == [".driver"]
    finally:
        subprocess.run(["umount", str(base / "mnt")], check=True)


def change_things(rootfs):
    """What a container might do to its rootfs; returns nothing, the tree tells."""
    (rootfs / "new-file").write_bytes(b"new")
    (rootfs / "etc/passwd").write_bytes(b"changed\n")
    (rootfs / "lib/libc.so").unlink()
    shutil.rmtree(rootfs / "home/user")
    shutil.rmtree(rootfs / "opq")  # then made again: hides the old one entirely
    (rootfs / "opq/fresh").mkdir(parents=True)
    (rootfs / "opq/fresh/f").write_bytes(b"fresh")
    (rootfs / "usr/bin/sh").unlink()
    (rootfs / "usr/bin/sh").symlink_to("busybox")
    os.link(rootfs / "new-file", rootfs / "new-link")
    os.mkfifo(rootfs / "dev/fifo2")
    os.chmod(rootfs / "usr/bin/su", 0o755)
    os.chown(rootfs / "xattr-file", 1000, 1000)
    os.setxattr(rootfs / "xattr-file", "trusted.berth", b"t2")
    for path in (rootfs / "new-file", rootfs / "etc/passwd", rootfs / "opq/fresh/f", rootfs / "xattr-file",
                 rootfs / "usr/bin/su"):
        os.utime(path, (1_700_000_000, 1_700_000_000))  # tar keeps whole seconds
    os.utime(rootfs / "usr/bin/sh", (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    os.utime(rootfs / "dev/fifo2", (1_700_000_000, 1_700_000_000))


@pytest.mark.parametrize("driver", ["overlay", "copy"])
def test_the_diff_tar_rebuilds_the_containers_rootfs(config, stack, tmp_path, driver):
    # What commit relies on: base layers + the diff layer == the container's rootfs.
    lowers, _, layers = stack
    snaps = Snapshotter(config, driver=driver)
    rootfs = snaps.prepare("c1", lowers)
    try:
        change_things(rootfs)
        out = io.BytesIO()
        diff_id, size = snaps.write_diff("c1", out)
        assert size == len(out.getvalue()) and diff_id == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
        names = tarfile.open(fileobj=io.BytesIO(out.getvalue())).getnames()
        assert "lib/.wh.libc.so" in names and "home/.wh.user" in names
        if driver == "overlay":
            assert "opq/.wh..wh..opq" in names  # copy lists the deleted files instead
        rebuilt = tmp_path / "rebuilt"
        apply_flat([*layers, out.getvalue()], rebuilt)

        def without_nlink(t):
            # overlayfs shows a lower file's link count even after its partner was copied up
            return {k: {f: v for f, v in info.items() if f != "nlink"} for k, info in t.items()}

        assert without_nlink(tree(rebuilt)) == without_nlink(tree(rootfs))
        assert (rebuilt / "new-link").stat().st_ino == (rebuilt / "new-file").stat().st_ino
    finally:
        snaps.remove("c1")


def test_write_diff_never_reads_through_a_symlink_swapped_in_by_the_container(config, stack, monkeypatch):
    # The race (a directory listed, then swapped for a symlink to the host's /etc before
    # its files are read) is staged by listing a path below a symlink.
    lowers, _, _ = stack
    snaps = Snapshotter(config, driver="copy")
    rootfs = snaps.prepare("c1", lowers)
    try:
        (rootfs / "evil").symlink_to("/etc")
        monkeypatch.setattr(Snapshotter, "diff", lambda self, key: iter([Change("A", "/evil/hostname")]))
        out = io.BytesIO()
        with pytest.raises(RuntimeFailure, match="changed its files"):
            snaps.write_diff("c1", out)
        assert Path("/etc/hostname").read_bytes() not in out.getvalue()
    finally:
        snaps.remove("c1")


def test_a_prepare_killed_half_way_is_redone_by_the_next_prepare(config, stack):
    lowers, expected, _ = stack
    snaps = Snapshotter(config, driver="overlay")
    snaps.prepare("c1", lowers)
    (config.root / "snapshots/c1/snapshot.json").unlink()  # as if killed before its record
    assert not snaps.exists("c1") and snaps.list() == []
    rootfs = snaps.prepare("c1", lowers)
    try:
        assert mount_points().count(str(rootfs)) == 1
        assert tree(rootfs) == expected
    finally:
        snaps.remove("c1")
