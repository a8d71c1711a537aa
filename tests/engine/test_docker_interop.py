"""Interoperability with Debian's docker.io (dockerd 20.10) through a real registry.

Berth pushes, docker pulls and runs; docker imports and pushes, Berth pulls the
same digests. The daemon is private to this module (tests.support.dockerd); if
it cannot start, these tests fail rather than skip.
"""

from __future__ import annotations

import json
import re

import pytest

from engine.config import EngineConfig
from engine.distribution import transfer as dist
from engine.images.store import ImageStore
from tests.support import imagebuilder as ib
from tests.support.dockerd import run_dockerd


@pytest.fixture(scope="module")
def dockerd(open_registry):
    with run_dockerd(insecure_registries=(open_registry.host,)) as daemon:
        yield daemon


def new_store(tmp_path) -> ImageStore:
    return ImageStore(EngineConfig(root=tmp_path / "store", run_root=tmp_path / "run"))


def without_zstd(built: ib.BuiltImage) -> ib.BuiltImage:
    """The same image with its zstd layer gzipped: dockerd 20.10 cannot unpack zstd layers
    ("Error processing tar file: unexpected EOF"; zstd arrived in Docker 23)."""
    layers = [ib.make_layer(tar, "gzip", oci=True, created_by=layer.created_by)
              if layer.media_type.endswith("+zstd") else layer
              for layer, tar in zip(built.layers, built.layer_tars(), strict=True)]
    return ib.build_image(layers, oci=True, cmd=["sh"], workdir="/data")


@pytest.mark.parametrize("oci", [True, False], ids=["oci", "docker"])
def test_image_pushed_by_berth_is_pulled_and_run_by_docker(tmp_path, dockerd, open_registry, oci):
    store = new_store(tmp_path)
    built = without_zstd(ib.multilayer_built(oci=True)) if oci else ib.multilayer_built(oci=False)
    name = f"{open_registry.host}/interop/from-berth:{'oci' if oci else 'docker'}"
    built.register(store, name)
    digest = dist.push(store, name)

    dockerd.docker("pull", name)
    repo_digests = json.loads(dockerd.docker("image", "inspect", "--format", "{{json .RepoDigests}}",
                                             name).stdout)
    assert repo_digests == [f"{name.rsplit(':', 1)[0]}@{digest}"]
    run = dockerd.docker("run", "--rm", "--network", "none", name, "/bin/busybox", "echo", "hi")
    assert run.stdout == b"hi\n"
    # The layers' whiteouts and opaque directory mean the same to docker.
    script = "cat /data/changed.txt; echo; ls /opt/app; test -e /data/gone.txt || echo gone"
    out = dockerd.docker("run", "--rm", "--network", "none", name, "/bin/sh", "-c", script).stdout.decode()
    assert out.split() == ["new", "new.txt", "gone"]
    dockerd.docker("rmi", name)


def test_image_pushed_by_docker_is_pulled_by_berth_with_same_digests(tmp_path, dockerd, open_registry):
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(ib.layer_tar(ib.busybox_rootfs_entries()))
    name = f"{open_registry.host}/interop/from-docker:v1"
    dockerd.docker("import", "--change", 'CMD ["/bin/sh"]', str(rootfs), name)
    pushed = dockerd.docker("push", name).stdout.decode()
    match = re.search(r"v1: digest: (sha256:[0-9a-f]{64}) size: \d+", pushed)
    assert match, pushed
    docker_digest = match.group(1)
    docker_layers = json.loads(dockerd.docker("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                                              name).stdout)
    docker_id = dockerd.docker("image", "inspect", "--format", "{{.Id}}", name).stdout.decode().strip()

    store = new_store(tmp_path)
    image = dist.pull(store, name)
    assert image.manifest_digest == docker_digest
    assert image.id == docker_id
    assert image.diff_ids == docker_layers
    assert image.config["config"]["Cmd"] == ["/bin/sh"]
    dockerd.docker("rmi", name)
