"""Applying layer tars: flat and overlay modes agree, whiteouts, metadata, safety, the store."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import zstandard

from engine.config import EngineConfig
from engine.errors import InvalidArgument
from engine.images.content import ContentStore
from engine.images.layers import (
    LayerStore,
    apply_layer,
    apply_tree,
    chain_ids,
    open_layer,
)

# --- helpers, shared with test_layers_hostile.py and test_snapshots.py ---------------

T0 = 1_600_000_000  # a fixed mtime, so trees built at different moments compare equal


def entry(name, kind="file", data=b"", mode=None, uid=0, gid=0, mtime=T0, link="",
          xattrs=None, dev=(0, 0)):
    """One tar member: (TarInfo, data)."""
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE,
                 "block": tarfile.BLKTYPE}[kind]
    info.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    info.uid, info.gid, info.mtime, info.linkname = uid, gid, mtime, link
    info.devmajor, info.devminor = dev
    info.size = len(data) if kind == "file" else 0
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def whiteout(path):
    parent, _, name = path.rpartition("/")
    return entry(f"{parent}/.wh.{name}" if parent else f".wh.{name}")


def opaque(dirpath):
    return entry(f"{dirpath}/.wh..wh..opq")


def make_tar(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def tree(root: Path) -> dict:
    """What a user sees under root: type, mode, owner, content, link target, xattrs, mtime."""
    out = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            info = {"mode": oct(st.st_mode), "owner": (st.st_uid, st.st_gid), "mtime": st.st_mtime_ns}
            if stat.S_ISREG(st.st_mode):
                info["sha"] = hashlib.sha256(path.read_bytes()).hexdigest()
                info["nlink"] = st.st_nlink
            elif stat.S_ISLNK(st.st_mode):
                info["link"] = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            if stat.S_ISDIR(st.st_mode):
                info.pop("mtime")  # the overlay mount and our own writes both touch dir times
            if not stat.S_ISLNK(st.st_mode):
                info["xattrs"] = {k: os.getxattr(path, k) for k in os.listxattr(path)
                                  if not k.startswith("trusted.overlay.")}
            out[rel] = info
    return out


def mounted(mountpoint: Path) -> bool:
    target = str(mountpoint)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


class OverlayMount:
    """Mount lowers (lowest first) read-only for a test; always unmounted on exit."""

    def __init__(self, lowers, mountpoint: Path):
        self.lowers, self.mountpoint = lowers, mountpoint

    def __enter__(self):
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        lowerdir = ":".join(str(p) for p in reversed(self.lowers))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lowerdir}",
                        str(self.mountpoint)], check=True, capture_output=True)
        return self.mountpoint

    def __exit__(self, *exc):
        subprocess.run(["umount", str(self.mountpoint)], check=True)


# The stack the flat/overlay comparison uses: everything a layer can carry.
def stack_layers() -> list[bytes]:
    base = make_tar([
        entry("etc", "dir"),
        entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
        entry("etc/gone", data=b"deleted by layer 3\n"),
        entry("etc/gone-dir", "dir"),
        entry("etc/gone-dir/inner", data=b"also deleted\n"),
        entry("opq", "dir"),
        entry("opq/old", data=b"hidden by the opaque marker\n"),
        entry("opq/sub", "dir"),
        entry("opq/sub/old-deep", data=b"hidden too\n"),
        entry("lib", "dir"),
        entry("lib/libc.so", data=b"\x7fELF fake", mode=0o755),
        entry("usr", "dir"),
        entry("usr/bin", "dir"),
    ])
    middle = make_tar([
        entry("home", "dir"),
        entry("home/user", "dir", uid=1000, gid=1000, mode=0o750),
        entry("home/user/notes", data=b"mine\n", uid=1000, gid=1000, mode=0o600, mtime=T0 + 5),
        entry("usr", "dir"),
        entry("usr/bin", "dir"),
        entry("usr/bin/su", data=b"setuid tool", mode=0o4755),
        entry("usr/bin/su-link", "hardlink", link="usr/bin/su"),
        entry("usr/bin/sh", "symlink", link="/bin/busybox"),
        entry("dev", "dir"),
        entry("dev/null", "char", mode=0o666, dev=(1, 3)),
        entry("dev/fifo", "fifo", mode=0o620),
        entry("xattr-file", data=b"x", xattrs={"trusted.berth": "t1", "user.note": "u1"}),
        entry("lib", "dir"),
        entry("lib/libc.so", data=b"\x7fELF replaced", mode=0o755, mtime=T0 + 7),
    ])
    top = make_tar([
        entry("etc", "dir"),
        whiteout("etc/gone"),
        whiteout("etc/gone-dir"),
        entry("opq", "dir", mode=0o700),
        entry("opq/new", data=b"only this\n"),
        entry("opq/sub", "dir"),
        entry("opq/sub/kept", data=b"kept\n"),
        opaque("opq"),  # after its siblings: must still apply before them
        entry("usr", "dir"),
        entry("usr/bin", "dir"),
        entry("usr/bin/su-link2", "hardlink", link="usr/bin/su-link"),  # to a lower file (flat only)
        entry("home", "dir"),
        entry("home/user", "dir", uid=1000, gid=1000, mode=0o750),
        whiteout("home/user/notes"),
        entry("home/user/notes", data=b"rewritten\n", uid=1000, gid=1000, mode=0o600),
    ])
    return [base, middle, top]


def overlay_safe(layers: list[bytes]) -> list[bytes]:
    """The stack without the cross-layer hardlink, which overlay mode refuses."""
    *lower, top = layers
    with tarfile.open(fileobj=io.BytesIO(top)) as tar:
        keep = [(m, tar.extractfile(m).read() if m.isreg() else b"")
                for m in tar.getmembers() if m.name != "usr/bin/su-link2"]
    return [*lower, make_tar(keep)]


def apply_flat(layers: list[bytes], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for data in layers:
        apply_layer(io.BytesIO(data), root, "flat")


def apply_overlay(layers: list[bytes], parent: Path) -> list[Path]:
    dirs = []
    for i, data in enumerate(layers):
        apply_layer(io.BytesIO(data), parent / f"L{i}", "overlay")
        dirs.append(parent / f"L{i}")
    return dirs


# --- tests -------------------------------------------------------------------------


def test_flat_and_overlay_mount_show_the_same_tree(tmp_path):
    layers = overlay_safe(stack_layers())
    apply_flat(layers, tmp_path / "flat")
    lowers = apply_overlay(layers, tmp_path / "layers")
    with OverlayMount(lowers, tmp_path / "merged") as merged:
        merged_tree = tree(merged)
    flat = tree(tmp_path / "flat")
    assert flat == merged_tree

    # And the tree is what the layers say, not merely the same mistake twice.
    root = tmp_path / "flat"
    assert not (root / "etc/gone").exists() and not (root / "etc/gone-dir").exists()
    assert sorted(p.name for p in (root / "opq").iterdir()) == ["new", "sub"]
    assert os.listdir(root / "opq/sub") == ["kept"]
    assert stat.S_IMODE((root / "opq").stat().st_mode) == 0o700
    assert (root / "home/user/notes").read_bytes() == b"rewritten\n"
    su = (root / "usr/bin/su").stat()
    assert stat.S_IMODE(su.st_mode) == 0o4755
    assert su.st_ino == (root / "usr/bin/su-link").stat().st_ino and su.st_nlink == 2
    assert os.readlink(root / "usr/bin/sh") == "/bin/busybox"
    null = (root / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_ISFIFO((root / "dev/fifo").lstat().st_mode)
    assert stat.S_IMODE((root / "dev/fifo").lstat().st_mode) == 0o620
    user = (root / "home/user").stat()
    assert (user.st_uid, user.st_gid, stat.S_IMODE(user.st_mode)) == (1000, 1000, 0o750)
    assert os.getxattr(root / "xattr-file", "trusted.berth") == b"t1"
    assert os.getxattr(root / "xattr-file", "user.note") == b"u1"
    assert (root / "lib/libc.so").stat().st_mtime == T0 + 7
    assert (root / "lib").stat().st_mtime == T0  # dir mtime set after its children
    # no whiteout file anywhere in the flat result
    assert not [p for p in root.rglob("*") if p.name.startswith(".wh.")]


def test_flat_mode_hardlinks_to_a_lower_layer_and_overlay_mode_refuses(tmp_path):
    layers = stack_layers()
    apply_flat(layers, tmp_path / "flat")
    link = (tmp_path / "flat/usr/bin/su-link2").stat()
    assert link.st_ino == (tmp_path / "flat/usr/bin/su").stat().st_ino and link.st_nlink == 3
    with pytest.raises(InvalidArgument, match="usr/bin/su-link2"):
        apply_overlay(layers, tmp_path / "layers")
    assert sorted(os.listdir(tmp_path / "layers")) == ["L0", "L1"]  # no partial L2, no temp dir


def test_overlay_mode_writes_overlay_markers(tmp_path):
    data = make_tar([
        entry("d", "dir"),
        entry("d/.wh.x", uid=1000, gid=1001),
        opaque("d"),
        entry("e", "dir"),
    ])
    apply_layer(io.BytesIO(data), tmp_path / "L", "overlay")
    x = (tmp_path / "L/d/x").lstat()
    assert stat.S_ISCHR(x.st_mode) and x.st_rdev == 0 and (x.st_uid, x.st_gid) == (1000, 1001)
    assert os.getxattr(tmp_path / "L/d", "trusted.overlay.opaque") == b"y"
    with pytest.raises(OSError):
        os.getxattr(tmp_path / "L/e", "trusted.overlay.opaque")
    assert not list((tmp_path / "L").rglob(".wh.*"))


def test_layer_cannot_forge_overlay_xattrs(tmp_path):
    data = make_tar([entry("d", "dir", xattrs={"trusted.overlay.opaque": "y",
                                                "trusted.overlay.redirect": "/etc"})])
    apply_layer(io.BytesIO(data), tmp_path / "L", "overlay")
    assert [k for k in os.listxattr(tmp_path / "L/d") if k.startswith("trusted.overlay.")] == []


def test_gzip_zstd_and_plain_layers_have_the_plain_tars_diff_id(tmp_path):
    plain = make_tar([entry("a", data=b"hello" * 1000), entry("b", "dir")]) + b"\0" * 4096  # padding too
    expected = "sha256:" + hashlib.sha256(plain).hexdigest()
    blobs = {
        "plain": plain,
        "gzip": gzip.compress(plain),
        "zstd": zstandard.ZstdCompressor().compress(plain),
    }
    for name, blob in blobs.items():
        result = apply_layer(io.BytesIO(blob), tmp_path / name, "overlay", expected_diff_id=expected)
        assert result.diff_id == expected, name
        assert result.size == 5000 and result.tar_size == len(plain)
        assert (tmp_path / name / "a").read_bytes() == b"hello" * 1000
        assert [m.name for m in open_layer(io.BytesIO(blob))] == ["a", "b"]


def test_diff_id_mismatch_keeps_nothing(tmp_path):
    data = make_tar([entry("a", data=b"x")])
    with pytest.raises(InvalidArgument, match="diff_id"):
        apply_layer(io.BytesIO(data), tmp_path / "L", "overlay", expected_diff_id="sha256:" + "0" * 64)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("blob", [
    b"",
    b"not a tar at all" * 100,
    gzip.compress(b"garbage" * 100),
    gzip.compress(make_tar([entry("a", data=os.urandom(5000))]))[:3000],  # truncated
    make_tar([entry("a", data=os.urandom(5000))])[:3000],
], ids=["empty", "text", "gzip-garbage", "gzip-truncated", "tar-truncated"])
def test_corrupt_layers_are_refused_and_leave_nothing(tmp_path, blob):
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(blob), tmp_path / "L", "overlay")
    assert os.listdir(tmp_path) == []


def test_absolute_names_are_made_relative(tmp_path):
    data = make_tar([entry("/etc", "dir"), entry("/etc/hostname", data=b"box\n"),
                     entry("/etc/link", "hardlink", link="/etc/hostname")])
    (tmp_path / "root").mkdir()
    apply_layer(io.BytesIO(data), tmp_path / "root", "flat")
    assert (tmp_path / "root/etc/hostname").read_bytes() == b"box\n"
    assert (tmp_path / "root/etc/link").stat().st_nlink == 2


@pytest.mark.parametrize("mode", ["flat", "overlay"])
@pytest.mark.parametrize("entries, culprit", [
    ([entry("../evil", data=b"x")], "../evil"),
    ([entry("a/../../evil", data=b"x")], "a/../../evil"),
    ([entry("a", "symlink", link="/outside"), entry("a/passwd", data=b"x")], "a/passwd"),
    ([entry("a", "symlink", link="../outside"), entry("a/x", "dir")], "a/x"),
    ([entry("a", "symlink", link=".."), entry("a/.wh.outside-file")], "a/.wh.outside-file"),
    ([entry("a", "symlink", link=".."), opaque("a")], "a/.wh..wh..opq"),
    ([entry("h", "hardlink", link="../outside/secret")], "h"),
    ([entry("a", "symlink", link="../outside"), entry("h", "hardlink", link="a/secret")], "h"),
    ([entry("f", data=b"x"), entry("f/x", data=b"y")], "f/x"),
    ([entry(".wh..")], ".wh.."),
    ([entry("d/.wh...")], "d/.wh..."),
    ([entry(".wh.d", "dir"), entry(".wh.d/x", data=b"")], ".wh.d/x"),
    ([entry("a", "dir"), entry("a/..", "symlink", link="/")], "a/.."),
])
def test_escaping_layers_are_refused_naming_the_entry(tmp_path, mode, entries, culprit):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (outside / "outside-file").write_bytes(b"keep")
    target = tmp_path / "root"
    if mode == "flat":
        target.mkdir()
    before = tree(tmp_path)
    with pytest.raises(InvalidArgument, match=re.escape(f"'{culprit}'")):
        apply_layer(io.BytesIO(make_tar(entries)), target, mode)
    # Nothing outside the root changed; in overlay mode not even the root appeared.
    after = {k: v for k, v in tree(tmp_path).items() if not k.startswith("root/")}
    assert after == before


def test_flat_mode_replaces_a_lower_symlink_parent_by_a_directory(tmp_path):
    # What the overlay mount shows too: an upper directory hides a lower symlink.
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(io.BytesIO(make_tar([entry("etc", "symlink", link=str(outside))])), root, "flat")
    apply_layer(io.BytesIO(make_tar([entry("etc/passwd", data=b"x")])), root, "flat")
    assert os.listdir(outside) == []
    assert (root / "etc").is_dir() and not (root / "etc").is_symlink()
    assert (root / "etc/passwd").read_bytes() == b"x"


def test_whiteout_only_hides_lower_layers(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(io.BytesIO(make_tar([entry("d", "dir"), entry("d/lower", data=b"1")])), root, "flat")
    # this layer writes d/ then whites it out: its own d stays, the lower content goes
    apply_layer(io.BytesIO(make_tar([entry("d", "dir"), entry("d/mine", data=b"2"), whiteout("d")])),
                root, "flat")
    assert os.listdir(root / "d") == ["mine"]


def test_apply_tree_flattens_unpacked_layers_like_flat_mode(tmp_path):
    layers = overlay_safe(stack_layers())
    apply_flat(layers, tmp_path / "flat")
    lowers = apply_overlay(layers, tmp_path / "layers")
    (tmp_path / "copy").mkdir()
    for lower in lowers:
        apply_tree(lower, tmp_path / "copy")
    assert tree(tmp_path / "copy") == tree(tmp_path / "flat")


# --- LayerStore -----------------------------------------------------------------------
# The content store is the real one; the image is a stand-in with only ``.layers``
# (engine/images/store.py had not landed when this was written).


def fake_image(content: ContentStore, blobs: list[bytes], diff_ids=None):
    layers = []
    for i, blob in enumerate(blobs):
        plain = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        diff_id = diff_ids[i] if diff_ids else "sha256:" + hashlib.sha256(plain).hexdigest()
        layers.append(SimpleNamespace(digest=content.put(blob), size=len(blob), diff_id=diff_id,
                                      media_type="application/vnd.oci.image.layer.v1.tar+gzip"))
    return SimpleNamespace(layers=layers)


def test_layer_store_unpacks_once_and_shares_layers_by_chain_id(tmp_path):
    config = EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run")
    content = ContentStore(config)
    store = LayerStore(config, content)
    blobs = [gzip.compress(b) for b in overlay_safe(stack_layers())]
    image = fake_image(content, blobs)
    other = fake_image(content, blobs[:2] + [gzip.compress(make_tar([entry("other", data=b"o")]))])

    paths = store.ensure(image)
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700  # setuid files inside: host users kept out
    ids = chain_ids([layer.diff_id for layer in image.layers])
    assert paths == [store.path(c) for c in ids]
    assert all(len(p.name) == 16 for p in paths)
    assert (paths[1] / "usr/bin/su").exists()
    inode = paths[0].stat().st_ino
    other_paths = store.ensure(other)
    assert other_paths[:2] == paths[:2] and paths[0].stat().st_ino == inode  # shared, not redone
    assert other_paths[2] != paths[2]
    assert sorted(store.chain_ids()) == sorted(set(ids) | {chain_ids([layer.diff_id for layer in other.layers])[2]})

    other_top = chain_ids([layer.diff_id for layer in other.layers])[2]
    assert store.size(other_top) == 1  # the one byte of /other
    removed = store.remove_unused(ids)
    assert removed == {other_top: 1} and not other_paths[2].exists()
    assert all(p.is_dir() for p in paths)
    store.remove_unused([])
    assert [p for p in store.dir.iterdir() if not p.name.endswith(".lock")] == []


def test_layer_store_refuses_a_layer_whose_diff_id_lies(tmp_path):
    config = EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run")
    content = ContentStore(config)
    store = LayerStore(config, content)
    image = fake_image(content, [make_tar([entry("a", data=b"x")])], diff_ids=["sha256:" + "1" * 64])
    with pytest.raises(InvalidArgument, match="diff_id"):
        store.ensure(image)
    assert not store.has("sha256:" + "1" * 64)
    assert [p for p in store.dir.iterdir() if p.is_dir()] == []


def test_layer_store_concurrent_callers_get_one_complete_layer(tmp_path):
    config = EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run")
    content = ContentStore(config)
    big = make_tar([entry(f"f{i}", data=os.urandom(2000)) for i in range(300)])
    image = fake_image(content, [gzip.compress(big)])
    results, errors = [], []

    def worker():
        try:
            results.append(LayerStore(config, content).ensure(image))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({tuple(r) for r in results}) == 1
    assert len(os.listdir(results[0][0])) == 300
    layer_dirs = [p for p in LayerStore(config, content).dir.iterdir() if p.is_dir()]
    assert layer_dirs == [results[0][0]]  # no temp dirs left


def test_layer_store_cleans_what_a_killed_unpack_or_prune_left(tmp_path):
    # What SIGKILL leaves (a half-extracted temp dir, a half-deleted trash dir), made by hand.
    config = EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run")
    content = ContentStore(config)
    store = LayerStore(config, content)
    image = fake_image(content, [make_tar([entry("a", data=b"x")])])
    short = store.path(chain_ids([image.layers[0].diff_id])[0]).name
    (store.dir / f".tmp-{short}-killed/half").mkdir(parents=True)
    (store.dir / ".trash-other-killed/layer").mkdir(parents=True)
    [path] = store.ensure(image)
    assert (path / "a").read_bytes() == b"x"
    assert not (store.dir / f".tmp-{short}-killed").exists()
    store.remove_unused([])
    assert [p for p in store.dir.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.parametrize("tar_format", ["posix", "gnu"])
def test_layers_written_by_gnu_tar_apply_as_their_source(tmp_path, tar_format):
    # Long names (GNU LongLink or PAX path), a hardlink, a fifo, a symlink, PAX xattrs.
    src = tmp_path / "src"
    deep = src / ("d" * 120) / "sub"
    deep.mkdir(parents=True)
    (deep / ("f" * 150)).write_bytes(b"long name\n")
    os.link(deep / ("f" * 150), src / "hl")
    os.mkfifo(src / "fifo")
    (src / "sl").symlink_to("/nowhere")
    os.chown(src / "hl", 1000, 1000)
    os.chmod(src / "hl", 0o4750)
    xattr_flags = []
    if tar_format == "posix":
        os.setxattr(src / "hl", "user.note", b"kept")
        xattr_flags = ["--xattrs", "--xattrs-include=*"]
    for path in [*src.rglob("*"), src]:
        os.utime(path, ns=(T0 * 10**9, T0 * 10**9), follow_symlinks=False)
    layer = tmp_path / "layer.tar"
    subprocess.run(["tar", f"--format={tar_format}", *xattr_flags, "-C", str(src), "-cf", str(layer), "."],
                   check=True)
    for mode in ("flat", "overlay"):
        target = tmp_path / mode
        if mode == "flat":
            target.mkdir()
        with open(layer, "rb") as f:
            apply_layer(f, target, mode)
        assert tree(target) == tree(src), mode


def test_an_unpack_killed_half_way_is_finished_by_the_next_caller(tmp_path):
    config = EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run")
    content = ContentStore(config)
    big = make_tar([entry(f"f{i:05}", data=os.urandom(1024)) for i in range(3000)])
    image = fake_image(content, [gzip.compress(big, 1)])
    layers_dir = LayerStore(config, content).dir
    script = (
        "import sys, json; from pathlib import Path; from types import SimpleNamespace as N\n"
        "from engine.config import EngineConfig; from engine.images.content import ContentStore\n"
        "from engine.images.layers import LayerStore\n"
        "c = EngineConfig(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "LayerStore(c, ContentStore(c)).ensure(N(layers=[N(**json.loads(sys.argv[3]))]))\n"
    )
    layer = vars(image.layers[0])
    child = subprocess.Popen([sys.executable, "-c", script, str(config.root), str(config.run_root),
                              json.dumps(layer)], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 30
        while not any(p.name.startswith(".tmp-") and len(os.listdir(p)) > 100 for p in layers_dir.iterdir()):
            assert child.poll() is None and time.monotonic() < deadline, "the unpack never got going"
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    assert any(p.name.startswith(".tmp-") for p in layers_dir.iterdir())  # killed half-way

    [path] = LayerStore(config, content).ensure(image)  # the lock died with the process
    assert len(os.listdir(path)) == 3000
    assert [p.name for p in layers_dir.iterdir() if p.is_dir()] == [path.name]
