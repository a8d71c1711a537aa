"""commit (changes as one layer, deletions as whiteouts), cp in and out, export."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine.build import commit as cm
from engine.errors import InvalidArgument, NotFound


def run(eng, image, cmd):
    c, code = eng.run(image, ["sh", "-c", cmd], detach=False)
    return code, "".join(r["log"] for r in eng.logs(c.id))


def test_commit_round_trips_a_deletion(engine):
    c, code = engine.run("test/busybox", ["sh", "-c", "rm /etc/os-release && rm -r /home/app && "
                                          "echo new > /root/new && mkdir -p /srv/data"], detach=False)
    assert code == 0
    image = cm.commit(engine, c.id, "test/committed:1", message="my change", author="me <me@x>",
                      changes=["CMD [\"cat\", \"/root/new\"]", "ENV MODE=committed", "EXPOSE 80"])
    assert image.repo_tags == ["test/committed:1"]
    assert len(image.layers) == 2
    assert image.inspect()["Parent"] == engine.images.get("test/busybox").id  # as docker commit
    assert image.config["author"] == "me <me@x>"
    assert image.config["history"][-1]["comment"] == "my change"
    cfg = image.config["config"]
    assert cfg["Cmd"] == ["cat", "/root/new"] and "MODE=committed" in cfg["Env"] and "80/tcp" in cfg["ExposedPorts"]
    assert not any(e.startswith("HOSTNAME=") for e in cfg["Env"])
    # the layer holds whiteouts for the deletions and no engine placeholder files
    blob = engine.images.content.open(image.layers[-1].digest)
    with tarfile.open(fileobj=blob, mode="r:gz") as tar:
        names = set(tar.getnames())
    assert "etc/.wh.os-release" in names and "home/.wh.app" in names and "root/new" in names
    assert not {"etc/hosts", "etc/resolv.conf"} & names
    code, out = run(engine, "test/committed:1", "test ! -e /etc/os-release && test ! -e /home/app && "
                    "cat /root/new && test -d /srv/data && echo $MODE")
    assert code == 0 and out == "new\ncommitted\n"
    c2, code = engine.run("test/committed:1", detach=False)
    assert "".join(r["log"] for r in engine.logs(c2.id)) == "new\n"


def test_commit_of_a_running_container(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "echo live > /live; sleep 30"])
    for _ in range(100):
        if (Path(engine.get(c.id).config["Rootfs"]) / "live").exists():
            break
        __import__("time").sleep(0.02)
    image = cm.commit(engine, c.id)
    assert engine.get(c.id).status == "running"  # paused and resumed
    assert image.repo_tags == []
    code, out = run(engine, image.id, "cat /live")
    assert out == "live\n"


def test_cp_in_and_out_and_export(engine, tmp_path):
    c, code = engine.run("test/busybox", ["sh", "-c", "mkdir -p /data/sub && echo inside > /data/sub/f && "
                                          "ln -s /etc /data/etclink"], detach=False)
    assert code == 0
    # out: a directory, then a single file renamed
    cm.copy_out(engine, c.id, "/data", str(tmp_path))
    assert (tmp_path / "data" / "sub" / "f").read_text() == "inside\n"
    assert (tmp_path / "data" / "etclink").is_symlink()
    cm.copy_out(engine, c.id, "/data/sub/f", str(tmp_path / "renamed"))
    assert (tmp_path / "renamed").read_text() == "inside\n"
    # a symlink in the container resolves inside it, never on the host
    cm.copy_out(engine, c.id, "/data/etclink/os-release", str(tmp_path / "osr"))
    assert "Berth test busybox" in (tmp_path / "osr").read_text()
    with pytest.raises(NotFound):
        cm.copy_out(engine, c.id, "/nope", str(tmp_path / "x"))
    # in: a host file into a directory, and as a new name
    host = tmp_path / "host.txt"
    host.write_text("from host\n")
    cm.copy_in(engine, c.id, str(host), "/data")
    cm.copy_in(engine, c.id, str(host), "/data/other.txt")
    tree = tmp_path / "tree"
    (tree / "deep").mkdir(parents=True)
    (tree / "deep" / "z").write_text("z\n")
    cm.copy_in(engine, c.id, str(tree), "/")
    engine.start(c.id)
    engine.wait(c.id)
    out_tar = io.BytesIO()
    cm.export(engine, c.id, out_tar)
    out_tar.seek(0)
    with tarfile.open(fileobj=out_tar) as tar:
        names = set(tar.getnames())
        assert tar.extractfile("data/host.txt").read() == b"from host\n"
        assert tar.extractfile("data/other.txt").read() == b"from host\n"
        assert tar.extractfile("tree/deep/z").read() == b"z\n"
    assert "bin/busybox" in names and "etc/passwd" in names
    # a tar that tries to leave the root is refused
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        info = tarfile.TarInfo("../../escape")
        tar.addfile(info, io.BytesIO(b""))
    evil.seek(0)
    with pytest.raises(InvalidArgument):
        cm.copy_to(engine, c.id, "/data", evil)


def test_cli_cp_and_export(engine, tmp_path):
    c, _ = engine.run("test/busybox", ["sh", "-c", "echo cli > /cli.txt"], detach=False)
    base = [sys.executable, "-m", "engine", "--root", str(engine.config.root), "--run-root", str(engine.config.run_root)]
    out = subprocess.run(base + ["cp", f"{c.id}:/cli.txt", str(tmp_path / "got")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "got").read_text() == "cli\n"
    out = subprocess.run(base + ["export", "-o", str(tmp_path / "fs.tar"), c.id], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    with tarfile.open(tmp_path / "fs.tar") as tar:
        assert tar.extractfile("cli.txt").read() == b"cli\n"
    out = subprocess.run(base + ["commit", "-m", "via cli", c.id, "test/cli:1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert engine.images.get("test/cli:1").config["history"][-1]["comment"] == "via cli"
