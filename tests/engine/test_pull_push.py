"""Pull and push between the image store and real registries (docker-registry, the token server)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import main as cli_main
from engine.config import EngineConfig
from engine.distribution import transfer as dist
from engine.distribution.credentials import Credentials
from engine.distribution.registry import RegistryClient, RegistryUnauthorized, sha256_digest
from engine.errors import EngineError, InvalidArgument, NotFound, RegistryError
from engine.images.store import ImageStore
from tests.support import imagebuilder as ib
from tests.support.registry import upload
from tests.support.tokenserver import TokenAuth, run_front

PASSWORD = "wonderland"
REPO = Path(__file__).resolve().parents[2]


def new_store(tmp_path, name: str = "store") -> ImageStore:
    root = tmp_path / name
    return ImageStore(EngineConfig(root=root, run_root=root / "run"))


def blobs_in(store: ImageStore) -> set[str]:
    return set(store.content.digests())


def ingest_files(store: ImageStore) -> list[str]:
    return [p.name for p in store.content.ingest_dir.iterdir()]


class Events(list):
    def statuses(self, status: str) -> set[str]:
        return {e["id"] for e in self if e["status"] == status}


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


@pytest.mark.parametrize("oci", [True, False], ids=["oci", "docker"])
def test_push_remove_pull_roundtrip(tmp_path, open_registry, oci):
    """A multi-layer image (gzip, zstd and plain layers, whiteouts, opaque dir) survives a round trip."""
    store = new_store(tmp_path)
    built = ib.multilayer_built(oci=oci)
    name = f"{open_registry.host}/roundtrip/{'oci' if oci else 'docker'}:v1"
    built.register(store, name)
    events = Events()
    digest = dist.push(store, name, progress=events.append)
    assert digest == built.manifest_digest
    assert events.statuses("Pushed") == {short(layer.digest) for layer in built.layers}
    assert all(e["current"] <= e["total"] for e in events)

    store.remove(name)
    assert not store.exists(name)
    store.prune(all=True)
    events = Events()
    image = dist.pull(store, name, progress=events.append)
    assert image.manifest_digest == built.manifest_digest
    assert image.id == built.id
    assert [layer.digest for layer in image.layers] == [layer.digest for layer in built.layers]
    assert image.diff_ids == built.diff_ids
    assert f"{name}" in [str(t) for t in image.tags]
    assert events.statuses("Download complete") == {short(layer.digest) for layer in built.layers}
    downloading = [e for e in events if e["status"] == "Downloading"]
    assert downloading and all(e["total"] > 0 for e in downloading)

    # Pulling again fetches nothing.
    events = Events()
    assert dist.pull(store, name, progress=events.append).manifest_digest == digest
    assert events.statuses("Already exists") == {short(layer.digest) for layer in built.layers}
    assert not events.statuses("Downloading")


def test_push_to_second_repository_mounts_layers(tmp_path, open_registry):
    store = new_store(tmp_path)
    built = ib.multilayer_built()
    first = f"{open_registry.host}/mount/first:v1"
    built.register(store, first)
    dist.push(store, first)
    second = f"{open_registry.host}/mount/second:v1"
    store.tag(first, second)
    events = Events()
    assert dist.push(store, second, progress=events.append) == built.manifest_digest
    assert events.statuses("Mounted from mount/first") == {short(layer.digest) for layer in built.layers}
    assert not events.statuses("Pushing")
    # And pushing the same again: the registry has everything.
    events = Events()
    dist.push(store, second, progress=events.append)
    assert events.statuses("Layer already exists") == {short(layer.digest) for layer in built.layers}


@pytest.fixture(scope="module", params=[True, False], ids=["oci-index", "docker-list"])
def multiarch(request, open_registry):
    """An index with the host's platform, linux/arm64 (or amd64 on arm hosts) and an attestation entry."""
    oci = request.param
    repo = f"multi/{'oci' if oci else 'docker'}"
    host_arch = ib.host_architecture()
    other_arch = "amd64" if host_arch == "arm64" else "arm64"
    client = RegistryClient(open_registry.host)
    images = {}
    for arch in (host_arch, other_arch):
        built = ib.build_image([[ib.file("/arch", arch)]], architecture=arch, oci=oci)
        upload(client, repo, built, f"only-{arch}")
        images[arch] = built
    attestation = ib.build_image([[ib.file("/sbom", "{}")]], architecture="unknown", os_name="unknown", oci=oci)
    upload(client, repo, attestation, "attestation")
    index = json.loads(ib.make_index([(images[host_arch].manifest, "linux", host_arch),
                                      (images[other_arch].manifest, "linux", other_arch)], oci=oci))
    # Attestations come first here, so picking the first entry blindly would be wrong.
    index["manifests"].insert(0, {"mediaType": attestation.media_type, "digest": attestation.manifest_digest,
                                  "size": len(attestation.manifest),
                                  "platform": {"os": "unknown", "architecture": "unknown"}})
    data = json.dumps(index).encode()
    client.put_manifest(repo, "v1", data, index["mediaType"])
    return {"host": images[host_arch], "other": images[other_arch], "other_arch": other_arch,
            "index_digest": sha256_digest(data), "name": f"{open_registry.host}/{repo}:v1"}


def test_pull_index_picks_host_platform_or_requested_one(tmp_path, multiarch):
    store = new_store(tmp_path)
    image = dist.pull(store, multiarch["name"])
    assert image.manifest_digest == multiarch["host"].manifest_digest
    assert image.index_digest == multiarch["index_digest"]
    assert image.config["architecture"] == ib.host_architecture()

    other = new_store(tmp_path, "other")
    image = dist.pull(other, multiarch["name"], platform=f"linux/{multiarch['other_arch']}")
    assert image.manifest_digest == multiarch["other"].manifest_digest
    assert image.config["architecture"] == multiarch["other_arch"]

    with pytest.raises(EngineError, match=r"no matching manifest for linux/s390x .*available: linux/"):
        dist.pull(new_store(tmp_path, "third"), multiarch["name"], platform="linux/s390x")
    with pytest.raises(InvalidArgument, match="invalid platform"):
        dist.pull(new_store(tmp_path, "fourth"), multiarch["name"], platform="arm64")


def test_platform_mismatch_of_single_manifest_is_refused(tmp_path, multiarch):
    name = multiarch["name"].replace(":v1", f":only-{multiarch['other_arch']}")
    with pytest.raises(EngineError, match="does not match the requested platform"):
        dist.pull(new_store(tmp_path), name, platform=f"linux/{ib.host_architecture()}")


def test_platform_parsing_and_host_default():
    assert dist.Platform.parse("linux/arm64/v8") == dist.Platform("linux", "arm64", "v8")
    assert dist.Platform.parse("linux/x86_64") == dist.Platform("linux", "amd64")
    assert dist.Platform.host().architecture == ib.host_architecture()


def test_schema1_manifests_are_refused_clearly():
    schema1 = json.dumps({"schemaVersion": 1, "name": "x", "tag": "v1", "fsLayers": []}).encode()
    with pytest.raises(RegistryError, match="schema 1 manifest, which is deprecated"):
        dist._kind(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws")


# -- registries that lie or fail ---------------------------------------------------------


@pytest.fixture(scope="module")
def served(open_registry):
    built = ib.multilayer_built()
    upload(RegistryClient(open_registry.host), "hostile/app", built, "v1")
    return built


def test_blob_digest_lie_fails_and_stores_nothing(tmp_path, open_registry, served):
    store = new_store(tmp_path)
    lied = served.layers[1]
    with run_front(open_registry.host) as front:
        front.tamper[lied.digest] = bytes(b ^ 0xFF for b in lied.blob)  # same size, other bytes
        with pytest.raises(RegistryError, match=rf"digest mismatch: .*served blob {lied.digest}"):
            dist.pull(store, f"{front.host}/hostile/app:v1")
    assert not store.list(all=True)
    assert lied.digest not in blobs_in(store)
    assert served.manifest_digest not in blobs_in(store) and served.config_digest not in blobs_in(store)
    assert ingest_files(store) == []


def test_manifest_digest_lie_fails_and_stores_nothing(tmp_path, open_registry, served):
    store = new_store(tmp_path)
    with run_front(open_registry.host) as front:
        other = json.loads(served.manifest)
        other["annotations"] = {"evil": "yes"}
        front.tamper["v1"] = json.dumps(other).encode()
        with pytest.raises(RegistryError, match="digest mismatch: .*manifest"):
            dist.pull(store, f"{front.host}/hostile/app:v1")
        # Asking by digest, the bytes must hash to that digest, whatever the headers say.
        front.tamper[served.manifest_digest] = json.dumps(other).encode()
        with pytest.raises(RegistryError, match="digest mismatch"):
            dist.pull(store, f"{front.host}/hostile/app@{served.manifest_digest}")
    assert blobs_in(store) == set()
    assert not store.list(all=True)


def test_layer_that_does_not_match_its_diff_id_is_refused(tmp_path, open_registry):
    """A registry can serve a consistent but wrong image: the uncompressed tar must match the config."""
    good = ib.build_image([[ib.file("/a", "a")], [ib.file("/b", "b")]])
    config = json.loads(good.config)
    config["rootfs"]["diff_ids"][1] = sha256_digest(b"something else")
    config_bytes = json.dumps(config).encode()
    bad = ib.BuiltImage(ib.make_manifest(config_bytes, good.layers), config_bytes, good.layers)
    upload(RegistryClient(open_registry.host), "hostile/diffid", bad, "v1")
    store = new_store(tmp_path)
    with pytest.raises(RegistryError, match=rf"layer {good.layers[1].digest} .* unpacks to {good.diff_ids[1]}"):
        dist.pull(store, f"{open_registry.host}/hostile/diffid:v1")
    assert good.layers[1].digest not in blobs_in(store)
    assert not store.list(all=True)
    assert ingest_files(store) == []


def test_interrupted_pull_leaves_no_partial_blob_and_next_pull_completes(tmp_path, open_registry, served,
                                                                         monkeypatch):
    monkeypatch.setattr(dist, "RETRY_DELAY", 0.01)
    store = new_store(tmp_path)
    big = max(served.layers, key=lambda layer: layer.size)
    with run_front(open_registry.host) as front:
        front.cut[big.digest] = big.size // 2
        with pytest.raises(RegistryError, match=rf"interrupted|{big.digest}"):
            dist.pull(store, f"{front.host}/hostile/app:v1")
        assert big.digest not in blobs_in(store)
        assert ingest_files(store) == []
        assert not store.list(all=True)
        del front.cut[big.digest]
        image = dist.pull(store, f"{front.host}/hostile/app:v1")
    assert image.manifest_digest == served.manifest_digest
    assert all(store.content.verify(d) for d in image.blobs())


def test_killed_pull_leaves_no_blob_and_next_pull_completes(tmp_path, open_registry, served):
    """SIGKILL in the middle of a layer (a killed Celery worker): no partial blob, and a new pull works."""
    root = tmp_path / "engine"
    store = ImageStore(EngineConfig(root=root, run_root=root / "run"))
    big = max(served.layers, key=lambda layer: layer.size)
    with run_front(open_registry.host) as front:
        front.stall[big.digest] = big.size // 2
        name = f"{front.host}/hostile/app:v1"
        proc = subprocess.Popen([sys.executable, "-m", "engine", "--root", str(root), "--run-root",
                                 str(root / "run"), "pull", name], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not (front.requests("GET", big.digest) and ingest_files(store)):
                assert proc.poll() is None and time.monotonic() < deadline, "the pull never reached the layer"
                time.sleep(0.02)
        finally:
            proc.kill()
            proc.wait()
            front.release.set()
        assert big.digest not in blobs_in(store)
        assert not store.list(all=True)
        assert ingest_files(store), "the killed pull should have left its temp file in ingest/"
        store.content.clean_ingest()  # what the next reconcile does with a dead writer's temp file
        assert ingest_files(store) == []
        del front.stall[big.digest]
        image = dist.pull(store, name)
    assert image.manifest_digest == served.manifest_digest
    assert store.content.verify(big.digest)


def test_broken_connection_is_retried_within_the_pull(tmp_path, open_registry, served, monkeypatch):
    monkeypatch.setattr(dist, "RETRY_DELAY", 0.01)
    store = new_store(tmp_path)
    big = max(served.layers, key=lambda layer: layer.size)
    events = Events()
    with run_front(open_registry.host) as front:
        front.cut[big.digest], front.cut_times[big.digest] = big.size // 3, 1
        image = dist.pull(store, f"{front.host}/hostile/app:v1", progress=events.append)
        assert len(front.requests("GET", big.digest)) == 2
    assert image.manifest_digest == served.manifest_digest
    assert events.statuses("Retrying") == {short(big.digest)}
    assert store.content.verify(big.digest)


# -- auth -------------------------------------------------------------------------------------


def test_basic_auth_push_and_pull_and_wrong_credentials(tmp_path, auth_registry):
    store = new_store(tmp_path)
    built = ib.busybox_built()
    name = f"{auth_registry.host}/private/busybox:v1"
    built.register(store, name)
    with pytest.raises(RegistryUnauthorized, match=rf"unauthorized: authentication required for .*{auth_registry.host}"):
        dist.push(store, name)
    assert dist.push(store, name, credentials=Credentials("alice", PASSWORD)) == built.manifest_digest
    other = new_store(tmp_path, "other")
    with pytest.raises(RegistryUnauthorized, match="unauthorized: .*incorrect username or password") as err:
        dist.pull(other, name, credentials=Credentials("alice", "guess"))
    assert "guess" not in str(err.value)
    assert not other.list(all=True)
    image = dist.pull(other, name, credentials=Credentials("alice", PASSWORD))
    assert image.manifest_digest == built.manifest_digest


def test_push_and_pull_through_acr_like_token_service(tmp_path, open_registry):
    """Alibaba ACR: Bearer, Basic credentials to the realm with account=, a region-scoped service."""
    service = "registry.aliyuncs.com:cn-hangzhou:26842"
    auth = TokenAuth(service=service, realm_path="/auth", users={"dev@example.com": "acr-pass"})
    creds = Credentials("dev@example.com", "acr-pass")
    store = new_store(tmp_path)
    built = ib.multilayer_built(oci=False)
    with run_front(open_registry.host, auth) as front:
        name = f"{front.host}/berth-ns/app:v1"
        built.register(store, name)
        events = Events()
        assert dist.push(store, name, credentials=creds, progress=events.append) == built.manifest_digest
        assert events.statuses("Pushed") == {short(layer.digest) for layer in built.layers}
        assert {r["service"] for r in auth.token_requests} == {service}
        assert {r["account"] for r in auth.token_requests} == {"dev@example.com"}
        assert ["repository:berth-ns/app:pull,push"] in [r["scope"] for r in auth.token_requests]
        # Push scope tokens are cached: one token request for all the layer, config and manifest calls.
        assert sum(r["scope"] == ["repository:berth-ns/app:pull,push"] for r in auth.token_requests) == 1
        with pytest.raises(RegistryUnauthorized):
            dist.pull(new_store(tmp_path, "anon"), name)
        image = dist.pull(new_store(tmp_path, "other"), name, credentials=creds)
        assert image.manifest_digest == built.manifest_digest


# -- repositories -----------------------------------------------------------------------------


def test_catalog_tags_and_delete(tmp_path, open_registry, served):
    assert "hostile/app" in dist.catalog(open_registry.host, page_size=1)
    assert dist.list_tags(f"{open_registry.host}/hostile/app") == ["v1"]
    client = RegistryClient(open_registry.host)
    client.put_manifest("hostile/app", "doomed", served.manifest, served.media_type)
    victim = ib.build_image([[ib.file("/doomed", "x")]])
    upload(client, "repo/delete", victim, "v1")
    assert dist.delete_manifest(f"{open_registry.host}/repo/delete:v1") == victim.manifest_digest
    with pytest.raises(NotFound, match="manifest unknown"):
        client.get_manifest("repo/delete", victim.manifest_digest)


# -- command line --------------------------------------------------------------------------------


def test_cli_login_push_pull_tags(tmp_path, auth_registry, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    root = tmp_path / "engine"
    store = ImageStore(EngineConfig(root=root, run_root=root / "run"))
    built = ib.busybox_built()
    name = f"{auth_registry.host}/cli/busybox:v1"
    built.register(store, name)
    base = ["--root", str(root), "--run-root", str(root / "run")]

    assert cli_main([*base, "push", name]) == 1
    assert "Error: unauthorized" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    assert cli_main([*base, "login", "-u", "alice", "--password-stdin", auth_registry.host]) == 1
    assert "incorrect username or password" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli_main([*base, "login", "-u", "alice", "--password-stdin", auth_registry.host]) == 0
    assert "Login Succeeded" in capsys.readouterr().out

    assert cli_main([*base, "push", name]) == 0
    out = capsys.readouterr().out
    assert f"{short(built.layers[0].digest)}: Pushed" in out
    assert f"v1: digest: {built.manifest_digest}" in out

    store.remove(name)
    store.prune(all=True)
    assert cli_main([*base, "pull", name]) == 0
    out = capsys.readouterr().out
    assert f"{short(built.layers[0].digest)}: Pull complete" in out
    assert f"Digest: {built.manifest_digest}" in out
    assert store.get(name).manifest_digest == built.manifest_digest

    assert cli_main([*base, "tags", f"{auth_registry.host}/cli/busybox"]) == 0
    assert capsys.readouterr().out.split() == ["v1"]
    assert cli_main([*base, "catalog", auth_registry.host]) == 0
    assert "cli/busybox" in capsys.readouterr().out.split()
    assert cli_main([*base, "manifest", "rm", name]) == 1
    assert "deletes are disabled" in capsys.readouterr().err
    assert cli_main([*base, "logout", auth_registry.host]) == 0
    assert cli_main([*base, "tags", f"{auth_registry.host}/cli/busybox"]) == 1
    assert "unauthorized" in capsys.readouterr().err
