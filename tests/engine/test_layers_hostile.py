"""Hostile layer tars, generated: whatever a layer holds, nothing outside the root changes.

Each example is a random sequence of entries whose names and link targets are built from
``..``, ``.``, ``/``, absolute paths, whiteouts and a few ordinary names. It is applied in
both modes into ``tmp/root`` of a sandbox that also holds a sentinel file next to the
root and a sentinel directory above it. The layer either applies or is refused with an
InvalidArgument naming one of its entries; either way the sandbox outside the root is
exactly as before.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import InvalidArgument
from engine.images.layers import apply_layer
from tests.engine.test_layers import entry, make_tar, tree

# Few names, so that entries often meet: a symlink "a", then "a/b". "up", "abs", "esc" and
# "etc" are the lower layer's symlinks in flat mode.
COMPONENTS = ["..", ".", "", "a", "b", "etc", "up", "abs", "esc",
              ".wh.a", ".wh..", ".wh...", ".wh..wh..opq", ".wh.etc"]
# "@" stands for the sandbox: absolute symlinks point into it rather than at the host's
# real /, so that a broken implementation damages (and is caught in) the sandbox only.
LINK_TARGETS = ["..", "../..", "../../..", "@", "@/above", "@/tmp", "a", "a/b", ".",
                "../sentinel", "../../above", "../../above/secret", "@/above/secret"]

paths = st.builds(
    lambda absolute, parts: ("/" if absolute else "") + "/".join(parts),
    st.booleans(), st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=3),
)
link_targets = st.one_of(st.sampled_from(LINK_TARGETS), paths)
entries = st.tuples(
    st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo", "char"]),
    paths,
    link_targets,
)
# The classic trick, made likely: a symlink, then an entry below it.
through_symlink = st.builds(
    lambda name, target, below: [("symlink", name, target), (below[0], f"{name}/{below[1]}", below[2])],
    paths, link_targets, entries,
)
layers = st.lists(st.one_of(entries.map(lambda e: [e]), through_symlink), min_size=1, max_size=6).map(
    lambda groups: [e for group in groups for e in group])


def build(spec, base: Path) -> tuple[bytes, list[str]]:
    members = []
    for kind, name, link in spec:
        if kind == "symlink":
            # Absolute symlinks point into the sandbox, never at the host's real files.
            link = link.replace("@", str(base))
            if link.startswith("/") and not link.startswith(str(base)):
                link = f"{base}{link}"
        else:
            link = link.replace("@", "/")
        if kind in ("symlink", "hardlink"):
            members.append(entry(name, kind, link=link))
        elif kind == "char":
            members.append(entry(name, "char", dev=(1, 3)))
        else:
            members.append(entry(name, kind, data=b"payload" if kind == "file" else b""))
    return make_tar(members), [name for _, name, _ in spec]


def make_sandbox(base: Path, mode: str) -> Path:
    (base / "above").mkdir()
    (base / "above/secret").write_bytes(b"secret")
    (base / "tmp").mkdir()
    (base / "tmp/sentinel").write_bytes(b"next to root")
    root = base / "tmp/root"
    if mode == "flat":
        # A lower layer already holding symlinks that point out of the root.
        root.mkdir()
        lower = make_tar([
            entry("a", "dir"), entry("a/file", data=b"lower"),
            entry("up", "symlink", link=".."), entry("abs", "symlink", link=str(base)),
            entry("esc", "symlink", link="../../above"), entry("etc", "symlink", link=f"{base}/above"),
        ])
        apply_layer(io.BytesIO(lower), root, "flat")
    return root


# The sandbox sits this deep in its temporary directory, so that even a chain of
# relative symlinks followed by a broken implementation stays inside what we watch.
DEPTH = 40


def outside_root(top: Path, root: Path) -> dict:
    rel = str(root.relative_to(top))
    return {k: v for k, v in tree(top).items() if k != rel and not k.startswith(rel + "/")}


@pytest.fixture(scope="module")
def deep():
    """A temporary directory and, DEPTH levels below it, where sandboxes go."""
    with tempfile.TemporaryDirectory(prefix="berth-hostile-") as tmp:
        top = Path(tmp)
        tip = top.joinpath(*["d"] * DEPTH)
        tip.mkdir(parents=True)
        yield top, tip


def check(deep, spec, mode: str) -> None:
    top, tip = deep
    base = tip / "sandbox"
    base.mkdir()
    try:
        data, names = build(spec, base)
        root = make_sandbox(base, mode)
        before = outside_root(top, root)
        try:
            apply_layer(io.BytesIO(data), root, mode)
        except InvalidArgument as exc:
            # tarfile drops the trailing "/" of directory names; the message uses its name.
            named = {n for name in names for n in (name, name.rstrip("/"))}
            assert any(f"layer entry {name!r}" in str(exc) for name in named), str(exc)
            if mode == "overlay":
                assert not root.exists()
        else:
            # Applied: no whiteout *file* in a flat root, and overlay markers only as devices.
            for path in root.rglob("*"):
                if path.name.startswith(".wh."):
                    raise AssertionError(f"whiteout file left in the result: {path}")
        assert outside_root(top, root) == before
    finally:
        shutil.rmtree(base)


SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.root  # layers carry owners and devices
@SETTINGS
@given(spec=layers)
def test_flat_mode_never_writes_outside_the_root(deep, spec):
    check(deep, spec, "flat")


@pytest.mark.root  # whiteouts are devices
@SETTINGS
@given(spec=layers)
def test_overlay_mode_never_writes_outside_the_root(deep, spec):
    check(deep, spec, "overlay")


@pytest.mark.parametrize("mode", ["flat", "overlay"])
def test_a_hardlink_to_an_absolute_host_path_then_a_file_leaves_the_host_file_alone(tmp_path, mode):
    """Issue 12's trick against layers: "/<host path>" means the root's <host path>."""
    canary = tmp_path / "host" / "canary"
    canary.parent.mkdir()
    canary.write_bytes(b"host secret\n")
    before = os.stat(canary)
    root = tmp_path / "root"
    if mode == "flat":
        root.mkdir()
    layer = make_tar([entry("hl", "hardlink", link=str(canary)), entry("hl", data=b"overwritten\n")])
    with pytest.raises(InvalidArgument, match="hl"):
        apply_layer(io.BytesIO(layer), root, mode)
    after = os.stat(canary)
    assert canary.read_bytes() == b"host secret\n"
    assert (after.st_nlink, after.st_mtime_ns, after.st_mode) == (before.st_nlink, before.st_mtime_ns, before.st_mode)
