"""The engine's stores are wired once (``Engine``), and its shared helpers have one home."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.base import arch, files
from engine.config import EngineConfig
from engine.engine import Engine
from engine.errors import Conflict
from engine.supervisor import launcher
from tests.support import imagebuilder as ib

REPO = Path(__file__).resolve().parents[2]


def test_every_way_in_refuses_to_remove_an_image_a_container_uses(tmp_path):
    config = EngineConfig(root=tmp_path / "r", run_root=tmp_path / "x")
    ib.busybox_image(Engine(config).images)
    Engine(config).containers.create("test/busybox", ["true"], name="user", network="none")
    # The image store of a fresh Engine, the CLI's and the
    # containers' own: each knows the containers.
    from engine.cli import images as cli_images

    for store in (Engine(config).images, cli_images._store(config), Engine(config).containers.images):
        with pytest.raises(Conflict, match="user"):
            store.remove("test/busybox")
    Engine(config).containers.remove("user")
    Engine(config).images.remove("test/busybox")


def test_one_engine_holds_one_of_each_store(tmp_path):
    eng = Engine(EngineConfig(root=tmp_path / "r", run_root=tmp_path / "x"))
    containers = eng.containers
    assert containers.engine is eng and containers.images is eng.images and containers.volumes is eng.volumes
    assert eng.layers.content is eng.images.content
    alone = type(containers)(eng.config)  # Containers(config) makes its own engine, around itself
    assert alone.engine.containers is alone


def test_the_monitor_is_one_module_loaded_lean():
    """The lean interpreter imports the monitor by the engine's name for it, and nothing the
    monitor only needs once its container runs."""
    code = (f"import sys; sys.path.append({str(REPO)!r}); from engine.supervisor import monitor; "
            "print(monitor.__name__, 'monitor' in sys.modules, 'json' in sys.modules, 'socket' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["engine.supervisor.monitor", "False", "False", "False"]
    assert "from engine.supervisor import monitor" in launcher.MONITOR_LAUNCHER


@pytest.mark.parametrize("machine, oci", [("x86_64", "amd64"), ("i686", "386"), ("i386", "386"),
                                          ("aarch64", "arm64"), ("armv7l", "arm"), ("s390x", "s390x")])
def test_one_architecture_map(machine, oci):
    assert arch.oci_arch(machine) == oci


def test_atomic_write_keeps_the_old_file_when_it_fails(tmp_path):
    target = tmp_path / "state.json"
    files.write_json_atomic(target, {"a": 1}, fsync=True, mode=0o600)
    assert target.read_text() == '{"a": 1}' and (target.stat().st_mode & 0o777) == 0o600
    with pytest.raises(TypeError):
        files.write_json_atomic(target, {"a": object()}, fsync=False)
    with pytest.raises(OSError):
        files.write_atomic(tmp_path / "missing" / "x", b"", fsync=False)
    assert target.read_text() == '{"a": 1}' and os.listdir(tmp_path) == ["state.json"]


def test_the_lock_nests_within_a_thread_and_excludes_other_processes(tmp_path):
    path = tmp_path / "lock"
    with files.lock(path), files.lock(path):  # nested: no deadlock
        probe = subprocess.run([sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1]); "
                                "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(path)], capture_output=True)
        assert probe.returncode != 0  # held against everyone else
    with files.lock(path, exclusive=False), pytest.raises(RuntimeError):
        with files.lock(path):
            pass


def test_one_key_value_parser_for_labels_and_build_args(monkeypatch):
    from engine.base.labels import labels_match
    from engine.cli import _options as options
    from engine.errors import InvalidArgument

    monkeypatch.setenv("FROM_ENV", "e")
    monkeypatch.delenv("UNSET", raising=False)
    assert options.pairs(["a=1", "b", "a=2", "c=x=y"]) == {"a": "2", "b": "", "c": "x=y"}
    assert options.pairs(["FROM_ENV", "UNSET", "k=v"], what="build-arg", from_env=True) == {"FROM_ENV": "e", "k": "v"}
    with pytest.raises(InvalidArgument, match="bad build-arg '=x'"):
        options.pairs(["=x"], what="build-arg")
    assert labels_match({"a": "1", "b": ""}, ["a", "a=1", "b="]) and not labels_match({"a": "1"}, ["a=2"])
