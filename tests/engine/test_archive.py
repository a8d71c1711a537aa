"""save / load / import: tars Docker and OCI tools read, verified on the way in."""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from engine.base.tarsafe import extract_all
from engine.config import EngineConfig
from engine.errors import InvalidArgument, NotFound
from engine.images import archive
from engine.images.store import ImageStore
from tests.support import imagebuilder as ib


def make_store(tmp_path, name="root"):
    return ImageStore(EngineConfig(root=tmp_path / name, run_root=tmp_path / "run"))


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


def assert_empty(store):
    assert store.list() == []
    assert list(store.content.digests()) == []
    assert list(store.content.ingest_dir.iterdir()) == []


def test_save_writes_an_oci_layout_with_docker_manifest(store, tmp_path):
    busybox = ib.busybox_image(store)
    layers = ib.multilayer_image(store)
    out = tmp_path / "images.tar"
    archive.save(store, ["test/busybox:latest", "test/layers"], out)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        for name in names:
            if name.startswith("blobs/sha256/") and tar.getmember(name).isfile():
                data = tar.extractfile(name).read()
                assert "sha256:" + hashlib.sha256(data).hexdigest() == "sha256:" + name.rsplit("/", 1)[1]
        manifest_json = json.loads(tar.extractfile("manifest.json").read())
        index = json.loads(tar.extractfile("index.json").read())
        assert json.loads(tar.extractfile("oci-layout").read()) == {"imageLayoutVersion": "1.0.0"}
        repositories = json.loads(tar.extractfile("repositories").read())
    assert {e["RepoTags"][0] for e in manifest_json} == {"test/busybox:latest", "test/layers:latest"}
    for entry in manifest_json:
        assert entry["Config"] in names and all(layer in names for layer in entry["Layers"])
    assert {d["digest"] for d in index["manifests"]} == {busybox.manifest_digest, layers.manifest_digest}
    assert {d["annotations"]["io.containerd.image.name"] for d in index["manifests"]} == {
        "docker.io/test/busybox:latest", "docker.io/test/layers:latest"}
    assert set(repositories) == {"test/busybox", "test/layers"}


def test_save_load_round_trip_keeps_digests(store, tmp_path):
    originals = [ib.busybox_image(store), ib.multilayer_image(store)]
    store.tag("test/busybox", "localhost:5000/bb:2")
    out = tmp_path / "images.tar"
    archive.save(store, ["test/busybox:latest", "localhost:5000/bb:2", "test/layers"], out)
    other = make_store(tmp_path, "other")
    loaded = archive.load(other, out)
    assert sorted(i.manifest_digest for i in loaded) == sorted(i.manifest_digest for i in originals)
    for original in originals:
        copy = other.get(original.id)
        assert copy.manifest_digest == original.manifest_digest
        assert [layer.digest for layer in copy.layers] == [layer.digest for layer in original.layers]
    assert sorted(other.get("test/busybox").repo_tags) == ["localhost:5000/bb:2", "test/busybox:latest"]
    # loading again is harmless
    assert len(archive.load(other, out)) == 2
    assert len(other.list()) == 2


def test_save_by_id_has_no_tags_and_unknown_image_fails(store, tmp_path):
    image = ib.busybox_image(store)
    archive.save(store, [image.short_id], tmp_path / "x.tar")
    other = make_store(tmp_path, "other")
    [loaded] = archive.load(other, tmp_path / "x.tar")
    assert loaded.id == image.id and loaded.repo_tags == []
    with pytest.raises(NotFound):
        archive.save(store, ["nope:1"], tmp_path / "y.tar")
    assert not (tmp_path / "y.tar").exists()


@pytest.mark.parametrize("legacy", [True, False], ids=["docker-legacy", "docker25-oci"])
def test_load_a_docker_save_tar(store, tmp_path, legacy):
    built = ib.multilayer_built()
    busybox = ib.busybox_built(oci=False)
    path = ib.docker_save_tar(tmp_path / "saved.tar", [(built, ["test/saved:1", "test/saved:2"]),
                                                       (busybox, ["busybox:latest"])], legacy=legacy)
    loaded = archive.load(store, path)
    by_id = {i.id: i for i in loaded}
    assert set(by_id) == {built.id, busybox.id}  # image IDs (config digests) are kept
    image = store.get("test/saved:2")
    assert image.id == built.id and image.diff_ids == built.diff_ids
    assert sorted(image.repo_tags) == ["test/saved:1", "test/saved:2"]
    assert store.get("busybox").id == busybox.id
    if not legacy:
        assert image.manifest_digest == built.manifest_digest


def test_load_from_a_pipe_and_from_an_oci_directory(store, tmp_path):
    built = ib.busybox_built()
    path = ib.docker_save_tar(tmp_path / "saved.tar", [(built, ["test/pipe:1"])], legacy=True)

    class Pipe(io.RawIOBase):  # not seekable, like stdin
        def __init__(self, data):
            self.buf = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            data = self.buf.read(len(b))
            b[: len(data)] = data
            return len(data)

    [image] = archive.load(store, Pipe(path.read_bytes()))
    assert image.id == built.id
    layout = tmp_path / "layout"
    oci_tar = tmp_path / "oci.tar"
    archive.save(store, ["test/pipe:1"], oci_tar)
    with tarfile.open(oci_tar) as tar:
        extract_all(tar, layout)
    other = make_store(tmp_path, "other")
    [copy] = archive.load(other, layout)
    assert copy.manifest_digest == image.manifest_digest and copy.repo_tags == ["test/pipe:1"]


def test_load_gzipped_archive(store, tmp_path):
    built = ib.busybox_built()
    path = ib.docker_save_tar(tmp_path / "saved.tar", [(built, ["test/gz:1"])])
    gz = tmp_path / "saved.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    [image] = archive.load(store, gz)
    assert image.repo_tags == ["test/gz:1"]


def _tar_with(path, files: dict):
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_bad_archives_store_nothing(store, tmp_path):
    (tmp_path / "garbage.tar").write_bytes(b"this is not a tar" * 100)
    with pytest.raises(InvalidArgument, match="not a valid image archive"):
        archive.load(store, tmp_path / "garbage.tar")
    with pytest.raises(InvalidArgument, match="neither manifest.json nor"):
        archive.load(store, _tar_with(tmp_path / "empty.tar", {"hello.txt": b"hi"}))
    with pytest.raises(NotFound):
        archive.load(store, tmp_path / "missing.tar")
    assert_empty(store)

    built = ib.multilayer_built()
    good = ib.docker_save_tar(tmp_path / "good.tar", [(built, ["test/bad:1"])])
    with tarfile.open(good) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    manifest = json.loads(files["manifest.json"])[0]

    # a layer whose content does not match the config's diff_id (the last one, so others got stored first)
    lying = dict(files)
    lying[manifest["Layers"][-1]] = ib.layer_tar([ib.file("/evil", "x")])
    with pytest.raises(InvalidArgument, match="does not match the image config"):
        archive.load(store, _tar_with(tmp_path / "lying.tar", lying))
    assert_empty(store)

    # a missing layer
    missing = {k: v for k, v in files.items() if k != manifest["Layers"][2]}
    with pytest.raises(InvalidArgument, match="has no"):
        archive.load(store, _tar_with(tmp_path / "missing-layer.tar", missing))
    assert_empty(store)

    # a config that is not what its name says
    renamed = dict(files)
    renamed[manifest["Config"]] = files[manifest["Config"]].replace(b"multilayer", b"multiLayer")
    with pytest.raises(InvalidArgument, match="does not match its digest"):
        archive.load(store, _tar_with(tmp_path / "config.tar", renamed))
    assert_empty(store)

    # a truncated archive
    data = good.read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidArgument):
        archive.load(store, tmp_path / "cut.tar")
    assert_empty(store)


def test_oci_archive_with_a_lying_blob_stores_nothing(store, tmp_path):
    built = ib.multilayer_built()
    good = ib.docker_save_tar(tmp_path / "good.tar", [(built, ["test/bad:1"])], legacy=False)
    with tarfile.open(good) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    name = "blobs/sha256/" + built.layers[-1].digest.removeprefix("sha256:")
    original = files[name]
    files[name] = ib.compress(ib.layer_tar([ib.file("/evil", "x")]), "gzip")
    with pytest.raises(InvalidArgument, match=f"should be {len(original)} bytes but"):
        archive.load(store, _tar_with(tmp_path / "short.tar", files))
    assert_empty(store)
    files[name] = original[:-1] + bytes([original[-1] ^ 1])  # same size, other bytes
    with pytest.raises(InvalidArgument, match="digest mismatch: expected " + built.layers[-1].digest):
        archive.load(store, _tar_with(tmp_path / "lying.tar", files))
    assert_empty(store)


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_import_rootfs(store, tmp_path, compression):
    tar_bytes = ib.layer_tar(ib.busybox_rootfs_entries())
    path = tmp_path / "rootfs.tar"
    path.write_bytes(ib.compress(tar_bytes, compression))
    image = archive.import_rootfs(store, path, "test/imported:1",
                                  changes=['CMD ["/bin/sh", "-c", "echo hi"]', "ENV A=1 B=two", "EXPOSE 8080/udp",
                                           "WORKDIR /root", "USER app", "LABEL team=ops", "VOLUME /data"],
                                  message="from a test")
    assert image.repo_tags == ["test/imported:1"]
    assert image.diff_ids == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    assert image.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    conf = image.config["config"]
    assert conf["Cmd"] == ["/bin/sh", "-c", "echo hi"] and conf["Env"] == ["A=1", "B=two"]
    assert conf["ExposedPorts"] == {"8080/udp": {}} and conf["WorkingDir"] == "/root"
    assert conf["User"] == "app" and conf["Labels"] == {"team": "ops"} and conf["Volumes"] == {"/data": {}}
    assert image.config["history"][0]["comment"] == "from a test"
    # the stored layer really is the gzip of the given tar
    assert gzip.decompress(store.content.read(image.layers[0].digest)) == tar_bytes


def test_import_without_name_and_with_shell_cmd(store):
    tar_bytes = ib.layer_tar([ib.directory("/etc"), ib.file("/etc/hostname", "x")])
    image = archive.import_rootfs(store, io.BytesIO(tar_bytes), changes=["CMD echo hello"])
    assert image.repo_tags == [] and image.config["config"]["Cmd"] == ["/bin/sh", "-c", "echo hello"]
    assert store.get(image.short_id).id == image.id


def test_bad_imports_store_nothing(store, tmp_path):
    tar_bytes = ib.layer_tar([ib.file("/x", "x")])
    with pytest.raises(InvalidArgument, match="not a valid change"):
        archive.import_rootfs(store, io.BytesIO(tar_bytes), changes=["RUN rm -rf /"])
    with pytest.raises(InvalidArgument, match="EXPOSE"):
        archive.import_rootfs(store, io.BytesIO(tar_bytes), changes=["EXPOSE 99999"])
    with pytest.raises(InvalidArgument, match="not a valid root filesystem tar"):
        archive.import_rootfs(store, io.BytesIO(b"plain text, not a tar" * 50), "x:1")
    with pytest.raises(InvalidArgument, match="cannot decompress"):
        archive.import_rootfs(store, io.BytesIO(b"\x1f\x8b\x08\x00garbage"), "x:1")
    escaping = ib.layer_tar([ib.Entry("x", raw_name="../../etc/evil", data=b"x")])
    with pytest.raises(InvalidArgument, match="outside the root"):
        archive.import_rootfs(store, io.BytesIO(escaping), "x:1")
    with pytest.raises(InvalidArgument):
        archive.import_rootfs(store, io.BytesIO(tar_bytes), "BAD:1")
    assert_empty(store)


def test_imported_image_round_trips_through_save(store, tmp_path):
    image = archive.import_rootfs(store, io.BytesIO(ib.layer_tar([ib.file("/a", "a")])), "test/imp:1")
    archive.save(store, ["test/imp:1"], tmp_path / "imp.tar")
    other = make_store(tmp_path, "other")
    [copy] = archive.load(other, tmp_path / "imp.tar")
    assert copy.manifest_digest == image.manifest_digest and copy.repo_tags == ["test/imp:1"]


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_reads_the_saved_archive(store, tmp_path):
    image = ib.busybox_image(store)
    out = tmp_path / "bb.tar"
    archive.save(store, ["test/busybox"], out)
    result = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{out}"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert "sha256:" + hashlib.sha256(result.stdout).hexdigest() == image.manifest_digest


@pytest.mark.root  # runs dockerd
@pytest.mark.skipif(not shutil.which("dockerd") and not os.path.exists("/usr/sbin/dockerd"),
                    reason="Debian's docker.io is not installed")
def test_docker_loads_our_tars_and_we_load_docker_save(store, tmp_path):
    """Round trip with a private dockerd 20.10: same image IDs both ways, and the image runs.

    (zstd layers are left out: dockerd 20.10 cannot unpack them.)"""
    from tests.support.dockerd import run_dockerd

    busybox = ib.busybox_image(store)
    layers = ib.multilayer_image(store, oci=False)
    ours = tmp_path / "ours.tar"
    archive.save(store, ["test/busybox", "test/layers"], ours)
    theirs = tmp_path / "theirs.tar"
    with run_dockerd() as docker:
        out = docker.docker("load", "-i", str(ours)).stdout.decode()
        assert "Loaded image: test/busybox:latest" in out and "Loaded image: test/layers:latest" in out
        ids = docker.docker("images", "--no-trunc", "--format", "{{.Repository}} {{.ID}}").stdout.decode()
        assert f"test/busybox {busybox.id}" in ids and f"test/layers {layers.id}" in ids
        run = docker.docker("run", "--rm", "--network=none", "test/layers", "sh", "-c",
                            "id -un app; echo $(cat /data/changed.txt); ls /opt/app; test ! -e /data/gone.txt")
        assert run.stdout.decode().split() == ["app", "new", "new.txt"]
        docker.docker("save", "-o", str(theirs), "test/busybox", "test/layers")
    other = make_store(tmp_path, "other")
    loaded = {image.id: image for image in archive.load(other, theirs)}
    assert set(loaded) == {busybox.id, layers.id}
    assert other.get("test/layers").diff_ids == layers.diff_ids


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_reads_the_content_store_and_we_load_its_oci_layout(store, tmp_path):
    image = ib.multilayer_image(store)
    layout = tmp_path / "skopeo-layout"
    src = f"oci:{store.content.root}:docker.io/test/layers:latest"
    result = subprocess.run(["skopeo", "copy", src, f"oci:{layout}:v1"], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    other = make_store(tmp_path, "other")
    [copy] = archive.load(other, layout)
    # skopeo rewrites the manifest and compresses the plain layer, but the image is the same
    assert copy.id == image.id and copy.diff_ids == image.diff_ids
    assert copy.repo_tags == []  # a bare "v1" ref.name names no repository


def test_export_layout_directory_merges_and_loads(store, tmp_path):
    busybox = ib.busybox_image(store)
    layers = ib.multilayer_image(store)
    layout = tmp_path / "layout"
    archive.export_layout(store, ["test/busybox"], layout)
    archive.export_layout(store, ["test/layers:latest"], layout)
    index = json.loads((layout / "index.json").read_text())
    assert {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]} == {
        "docker.io/test/busybox:latest", "docker.io/test/layers:latest"}
    other = make_store(tmp_path, "other")
    loaded = archive.load(other, layout)
    assert {i.manifest_digest for i in loaded} == {busybox.manifest_digest, layers.manifest_digest}
    assert other.get("test/layers").repo_tags == ["test/layers:latest"]
    if shutil.which("skopeo"):
        result = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}:docker.io/test/busybox:latest"],
                                capture_output=True, timeout=60)
        assert result.returncode == 0 and hashlib.sha256(result.stdout).hexdigest() == busybox.manifest_digest[7:]


def test_archive_paths_are_names_inside_the_archive_only(store, tmp_path):
    built = ib.busybox_built()
    good = ib.docker_save_tar(tmp_path / "good.tar", [(built, ["test/paths:1"])])
    with tarfile.open(good) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    entry = json.loads(files["manifest.json"])[0]
    # "./" prefixes are the same member
    dotted = dict(files, **{"manifest.json": json.dumps([{**entry, "Config": "./" + entry["Config"],
                                                          "Layers": ["./" + p for p in entry["Layers"]]}]).encode()})
    [image] = archive.load(store, _tar_with(tmp_path / "dotted.tar", dotted))
    assert image.id == built.id
    store.remove("test/paths:1")
    # a path that climbs out names nothing, in a tar or in a directory
    (tmp_path / "secret").write_bytes(files[entry["Layers"][0]])
    evil = dict(files, **{"manifest.json": json.dumps([{**entry, "Layers": ["../secret"]}]).encode()})
    with pytest.raises(InvalidArgument, match="has no"):
        archive.load(store, _tar_with(tmp_path / "evil.tar", evil))
    layout = tmp_path / "dir"
    layout.mkdir()
    for name, data in evil.items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    with pytest.raises(InvalidArgument, match="outside"):
        archive.load(store, layout)
    assert_empty(store)


def test_an_oci_layout_directory_cannot_point_outside_itself(store, tmp_path):
    """A layout directory's blobs are opened inside it: a symlink to a host file is refused."""
    built = ib.busybox_built()
    path = ib.docker_save_tar(tmp_path / "saved.tar", [(built, ["test/dir:1"])])
    [image] = archive.load(store, path)
    layout = tmp_path / "layout"
    oci_tar = tmp_path / "oci.tar"
    archive.save(store, ["test/dir:1"], oci_tar)
    with tarfile.open(oci_tar) as tar:
        extract_all(tar, layout)
    blob = layout / "blobs" / "sha256" / image.id.removeprefix("sha256:")
    host = tmp_path / "host-config"
    blob.rename(host)
    other = make_store(tmp_path, "other")
    for link in (str(host), "../../../host-config"):  # absolute, then climbing out
        blob.symlink_to(link)
        with pytest.raises(InvalidArgument):
            archive.load(other, layout)
        blob.unlink()
    os.replace(host, blob)
    [copy] = archive.load(other, layout)
    assert copy.manifest_digest == image.manifest_digest
