"""Local images: register, list, inspect, tag, untag, rmi and prune as a Docker user expects."""

import contextlib
import hashlib
import json
import multiprocessing

import pytest

from engine.config import EngineConfig
from engine.errors import Conflict, InvalidArgument, NotFound
from engine.images.reference import parse
from engine.images.store import ImageStore, chain_ids, parse_manifest
from tests.support import imagebuilder as ib


@pytest.fixture
def store(tmp_path):
    return ImageStore(EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run"))


def blob_count(store):
    return len(list(store.content.digests()))


def test_register_and_inspect_busybox(store):
    built = ib.busybox_built()
    image = built.register(store, "test/busybox:latest")
    assert image.id == built.config_digest and image.manifest_digest == built.manifest_digest
    assert image.repo_tags == ["test/busybox:latest"]
    assert image.repo_digests == [f"test/busybox@{built.manifest_digest}"]
    assert image.short_id == built.config_digest[7:19]
    assert image.config["config"]["Cmd"] == ["sh"]
    assert image.created == ib.CREATED
    assert image.size == sum(layer.size for layer in built.layers)
    assert [layer.diff_id for layer in image.layers] == built.diff_ids
    assert image.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert image.platform == f"linux/{ib.host_architecture()}"
    # the content dir stays a valid OCI layout with the tag annotated
    index = json.loads((store.content.root / "index.json").read_text())
    assert index["manifests"][0]["digest"] == built.manifest_digest
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == (
        "docker.io/test/busybox:latest"
    )


def test_lookup_by_name_digest_and_id(store):
    image = ib.busybox_image(store, "test/busybox:1")
    for name in ("test/busybox:1", "docker.io/test/busybox:1", image.id, image.id[7:], image.short_id,
                 image.short_id[:4], f"test/busybox@{image.manifest_digest}"):
        assert store.get(name).id == image.id, name
    with pytest.raises(NotFound, match="No such image: test/busybox:latest"):
        store.get("test/busybox")
    with pytest.raises(NotFound):
        store.get("sha256:" + "0" * 64)
    with pytest.raises(InvalidArgument, match="lowercase"):
        store.get("Test/Busybox")


def test_register_refuses_missing_or_bad_content(store):
    built = ib.busybox_built()
    store.content.put(built.manifest)
    with pytest.raises(NotFound, match="config"):
        store.register(built.manifest_digest, parse("x:1"))
    store.content.put(built.config)
    with pytest.raises(NotFound, match="layer"):
        store.register(built.manifest_digest, parse("x:1"))
    assert store.list() == []
    # wrong number of diff_ids
    lying = ib.make_config(built.layers + built.layers)
    manifest = ib.make_manifest(lying, built.layers)
    built.write(store.content)
    store.content.put(lying)
    with pytest.raises(InvalidArgument, match="1 layers but its config lists 2"):
        store.register(store.content.put(manifest))
    # an index or a schema 1 manifest is not an image manifest
    index = store.content.put(ib.make_index([(built.manifest, "linux", "amd64")]))
    with pytest.raises(InvalidArgument, match="image index"):
        store.register(index)
    with pytest.raises(InvalidArgument, match="schema 1"):
        parse_manifest(json.dumps({"schemaVersion": 1, "name": "x"}).encode())
    with pytest.raises(InvalidArgument, match="does not name manifest"):
        store.register(built.manifest_digest, parse("x@sha256:" + "1" * 64))
    assert store.list() == []


def test_docker_schema2_and_index_digest(store):
    built = ib.busybox_built(oci=False)
    built.write(store.content)
    index = ib.make_index([(built.manifest, "linux", "amd64")], oci=False)
    index_digest = store.content.put(index)
    image = store.register(built.manifest_digest, parse("localhost:5000/bb:1"), index_digest=index_digest)
    assert image.repo_tags == ["localhost:5000/bb:1"]
    assert image.repo_digests == [f"localhost:5000/bb@{index_digest}"]  # as docker shows the index digest
    assert store.get(f"localhost:5000/bb@{index_digest}").id == image.id
    assert image.index_digest == index_digest and index_digest in image.blobs()


def test_tag_untag_and_list(store):
    busybox = ib.busybox_image(store)
    layers = ib.multilayer_image(store)
    store.tag("test/busybox", "localhost:5000/bb:v1")
    store.tag(layers.short_id, "other")
    assert store.get("localhost:5000/bb:v1").id == busybox.id
    assert store.get("other:latest").id == layers.id
    listed = {img.id: img for img in store.list()}
    assert sorted(listed[busybox.id].repo_tags) == ["localhost:5000/bb:v1", "test/busybox:latest"]
    assert listed[layers.id].repo_tags == ["other:latest", "test/layers:latest"]
    store.tag("other", "other")  # retagging the same is fine
    with pytest.raises(NotFound):
        store.tag("nope", "x")
    with pytest.raises(InvalidArgument, match="digest"):
        store.tag("other", f"x@{layers.manifest_digest}")
    with pytest.raises(InvalidArgument):
        store.tag("other", "BAD")
    store.untag("other")
    store.untag("test/layers:latest")
    image = store.get(layers.id)
    assert image.repo_tags == [] and image.dangling
    with pytest.raises(NotFound):
        store.untag("test/layers:latest")


def test_tag_moves_to_a_new_image_leaving_the_old_dangling(store):
    old = ib.busybox_image(store, "test/app:1")
    old_bytes = store.content.size(old.id) + store.content.size(old.manifest_digest)
    new = ib.busybox_image(store, "test/app:1", env=["PATH=/bin", "NEW=1"])
    assert old.id != new.id
    assert store.get("test/app:1").id == new.id
    assert store.get(old.id).repo_tags == []
    ids, reclaimed = store.prune()
    assert ids == [old.id]
    # the shared busybox layer stays: the new image still needs it
    assert reclaimed == old_bytes
    assert store.content.has(new.layers[0].digest)
    assert not store.content.has(old.id) and not store.content.has(old.manifest_digest)
    assert [i.id for i in store.list()] == [new.id]


def test_rmi_semantics(store):
    busybox = ib.busybox_image(store, "test/busybox:latest")
    store.tag("test/busybox", "test/busybox:two")
    # one of two tags: only untagged
    assert store.remove("test/busybox:two") == ["Untagged: test/busybox:two"]
    store.tag("test/busybox", "elsewhere/bb:1")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove(busybox.short_id)
    lines = store.remove(busybox.short_id, force=True)
    assert sorted(lines[:-1]) == sorted([
        "Untagged: elsewhere/bb:1", "Untagged: test/busybox:latest",
        f"Untagged: test/busybox@{busybox.manifest_digest}",
    ])
    assert lines[-1] == f"Deleted: {busybox.id}"
    assert store.list() == [] and blob_count(store) == 0
    with pytest.raises(NotFound):
        store.remove("test/busybox")


def test_rmi_last_tag_deletes_image_but_keeps_shared_layers(store):
    a = ib.busybox_image(store, "test/a:1")
    b = ib.busybox_image(store, "test/b:1", cmd=["echo", "b"])
    assert a.layers[0].digest == b.layers[0].digest
    lines = store.remove("test/a:1")
    assert lines == ["Untagged: test/a:1", f"Untagged: test/a@{a.manifest_digest}", f"Deleted: {a.id}"]
    assert store.content.has(b.layers[0].digest) and store.get("test/b:1").id == b.id
    assert not store.content.has(a.id)
    store.remove("test/b:1")
    assert blob_count(store) == 0


def test_in_use_images_are_refused_and_skipped(store):
    image = ib.busybox_image(store)
    users = {image.id: ["web-1"]}
    store.add_in_use_check(lambda image_id: users.get(image_id, []))
    with pytest.raises(Conflict, match="container web-1 is using its referenced image"):
        store.remove("test/busybox")
    with pytest.raises(Conflict, match="being used by container web-1"):
        store.remove(image.id)
    assert store.prune(all=True) == ([], 0)
    # forced: untagged, but kept for the container
    lines = store.remove("test/busybox", force=True)
    assert all(line.startswith("Untagged:") for line in lines)
    assert store.get(image.id).dangling
    assert store.prune() == ([], 0)
    users.clear()
    ids, reclaimed = store.prune()
    assert ids == [image.id] and reclaimed > 1_000_000 and blob_count(store) == 0


def test_prune_all_and_bytes_reclaimed(store):
    busybox = ib.busybox_image(store)
    layers = ib.multilayer_image(store)
    total = store.disk_usage()
    assert store.prune() == ([], 0)  # nothing dangling
    # an orphan blob left by an interrupted pull is reclaimed as well
    orphan = store.content.put(b"orphan from an interrupted pull")
    ids, reclaimed = store.prune(all=True)
    assert sorted(ids) == sorted([busybox.id, layers.id])
    assert reclaimed == total + len(b"orphan from an interrupted pull")
    assert blob_count(store) == 0 and not store.content.has(orphan)
    assert store.list() == []


def test_delete_hook_sees_removed_images(store):
    seen = []
    store.add_delete_hook(lambda image: seen.append(image.chain_ids))
    image = ib.multilayer_image(store)
    store.remove("test/layers")
    assert seen == [chain_ids(image.diff_ids)]


def test_metadata_is_shared_between_store_instances(store, tmp_path):
    ib.busybox_image(store)
    other = ImageStore(EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run"))
    assert other.get("test/busybox").repo_tags == ["test/busybox:latest"]
    other.tag("test/busybox", "copy")
    assert store.get("copy").repo_tags == ["copy:latest", "test/busybox:latest"]


def _register_loop(root, run_root, rounds):
    store = ImageStore(EngineConfig(root, run_root))
    for i in range(rounds):
        ib.busybox_built(env=[f"ROUND={i % 3}"]).register(store, f"test/race:{i % 2}")


def _remove_loop(root, run_root, rounds):
    store = ImageStore(EngineConfig(root, run_root))
    for i in range(rounds):
        with contextlib.suppress(NotFound, Conflict):
            store.remove(f"test/race:{i % 2}", force=True)
        store.prune()


def test_registering_and_removing_from_several_processes_keeps_images_whole(store, tmp_path):
    ctx = multiprocessing.get_context("fork")
    args = (tmp_path / "root", tmp_path / "run", 25)
    procs = [ctx.Process(target=_register_loop, args=args), ctx.Process(target=_register_loop, args=args),
             ctx.Process(target=_remove_loop, args=args)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    images = store.list()
    for image in images:  # every image still listed is complete
        assert all(store.content.verify(d) for d in image.blobs())
    store.prune(all=True)
    assert store.list() == [] and list(store.content.digests()) == []


def test_chain_ids():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a]) == [a]
    assert chain_ids([a, b])[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()


# --- the command line ---------------------------------------------------------------------


def run_cli(tmp_path, capsys, *argv):
    from engine.cli import main

    code = main(["--root", str(tmp_path / "root"), "--run-root", str(tmp_path / "run"), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_images_tag_inspect_history_rmi_prune(store, tmp_path, capsys):
    busybox = ib.busybox_image(store)
    layers = ib.multilayer_image(store)
    assert run_cli(tmp_path, capsys, "tag", "test/busybox", "localhost:5000/bb:1")[0] == 0
    code, out, _ = run_cli(tmp_path, capsys, "images", "--digests")
    lines = out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["localhost:5000/bb", "1"] and busybox.short_id in line for line in lines)
    assert any(line.split()[:3] == ["test/busybox", "latest", busybox.manifest_digest] for line in lines)
    code, out, _ = run_cli(tmp_path, capsys, "images", "-q")
    assert sorted(out.split()) == sorted([busybox.short_id, layers.short_id])
    code, out, _ = run_cli(tmp_path, capsys, "image", "ls", "--format", "json", "test/layers")
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["Repository"] == "test/layers" and row["Tag"] == "latest" and row["ID"] == layers.short_id

    code, out, _ = run_cli(tmp_path, capsys, "image", "inspect", "test/layers")
    [info] = json.loads(out)
    assert info["Id"] == layers.id and info["RepoTags"] == ["test/layers:latest"]
    assert info["Config"]["Labels"] == {"berth.test": "multilayer"} and info["Config"]["WorkingDir"] == "/data"
    assert info["RootFS"]["Layers"] == layers.diff_ids
    assert [layer["Size"] for layer in info["Layers"]] == [layer.size for layer in layers.layers]
    assert info["Size"] == layers.size and len(info["History"]) == 4

    code, out, _ = run_cli(tmp_path, capsys, "history", "test/layers")
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["IMAGE", "CREATED"] and len(lines) == 5
    assert lines[1].startswith(layers.short_id) and "RUN delete" in lines[1] and "<missing>" in lines[4]

    code, out, err = run_cli(tmp_path, capsys, "rmi", "test/busybox", "nope")
    assert code == 1 and "No such image: nope:latest" in err
    assert out.splitlines() == ["Untagged: test/busybox:latest",
                                f"Untagged: test/busybox@{busybox.manifest_digest}"]
    code, out, _ = run_cli(tmp_path, capsys, "image", "rm", "-f", busybox.short_id)
    assert out.splitlines()[-1] == f"Deleted: {busybox.id}"
    code, out, _ = run_cli(tmp_path, capsys, "image", "prune", "-a", "-f")
    assert f"deleted: {layers.id}" in out and "Total reclaimed space: 1.05MB" in out
    code, out, _ = run_cli(tmp_path, capsys, "images")
    assert out.splitlines()[1:] == []


def test_cli_save_load_import_and_errors(store, tmp_path, capsys):
    image = ib.busybox_image(store)
    out_tar = tmp_path / "bb.tar"
    assert run_cli(tmp_path, capsys, "save", "-o", str(out_tar), "test/busybox")[0] == 0
    run_cli(tmp_path, capsys, "rmi", "test/busybox")
    code, out, _ = run_cli(tmp_path, capsys, "load", "-i", str(out_tar))
    assert code == 0 and out.strip() == "Loaded image: test/busybox:latest"
    assert store.get("test/busybox").manifest_digest == image.manifest_digest
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(ib.layer_tar([ib.file("/hello", "hi")]))
    code, out, _ = run_cli(tmp_path, capsys, "import", "--change", "CMD [\"/hello\"]", str(rootfs), "test/imp:1")
    assert code == 0 and store.get("test/imp:1").id == out.strip()
    assert store.get("test/imp:1").config["config"]["Cmd"] == ["/hello"]
    code, _, err = run_cli(tmp_path, capsys, "tag", "test/imp:1", "Bad/Name")
    assert code == 1 and err.startswith("Error: invalid reference format: repository name must be lowercase")
    code, _, err = run_cli(tmp_path, capsys, "load", "-i", str(rootfs))
    assert code == 1 and "Error: not an image archive" in err


def _tag_loop(root, run_root, prefix, count):
    store = ImageStore(EngineConfig(root, run_root))
    for i in range(count):
        store.tag("test/busybox", f"{prefix}/t:{i}")


def test_concurrent_tagging_loses_no_update(store, tmp_path):
    ib.busybox_image(store)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_tag_loop, args=(tmp_path / "root", tmp_path / "run", p, 30)) for p in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(store.get("test/busybox").repo_tags) == 61
