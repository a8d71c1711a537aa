"""Benchmark: pull a ~100 MB multi-layer image from a local registry with Berth, docker and skopeo.

Run it on its own (as root, with docker-registry and docker.io installed)::

    .venv/bin/python bench/pull.py [--size-mb 100] [--layers 5] [--repeat 3]

It starts its own docker-registry and dockerd (see tests/support), builds an
image of random (incompressible) data, pushes it with Berth, then times:

* Berth: ``engine.distribution.transfer.pull`` into a fresh store each run (download,
  sha256 of each blob, gunzip + sha256 for the diff_id, fsync, register), and
  that plus unpacking the layers for overlayfs (``LayerStore.ensure``), which
  Berth does at container creation but docker does during its pull;
* docker: ``docker pull`` after ``docker rmi`` (download, verify, and unpack
  each layer into overlay2: docker does more work per pull);
* skopeo (if installed): ``skopeo copy docker://... oci:DIR`` into a fresh dir.

To say where Berth's time goes it also times the parts on their own: the bare
download of the blobs (same parallelism), sha256 of the bytes, and gunzip.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from engine.config import EngineConfig  # noqa: E402
from engine.distribution import transfer as dist  # noqa: E402
from engine.images.layers import LayerStore  # noqa: E402
from engine.images.store import ImageStore  # noqa: E402
from tests.support import imagebuilder as ib  # noqa: E402
from tests.support.dockerd import run_dockerd  # noqa: E402
from tests.support.registry import run_registry  # noqa: E402


def build_image(size_mb: int, layers: int) -> ib.BuiltImage:
    per_layer = size_mb * 1_000_000 // layers
    built = [ib.busybox_layer("gzip", False)]
    for i in range(layers):
        entries = [ib.directory(f"/data{i}")]
        # A few files per layer, random bytes: gzip cannot shrink them, as with real binaries' worst case.
        for j in range(4):
            entries.append(ib.file(f"/data{i}/blob{j}.bin", os.urandom(per_layer // 4)))
        tar = ib.layer_tar(entries)
        blob = gzip.compress(tar, compresslevel=1, mtime=0)
        built.append(ib.Layer(blob, ib.sha256(tar), ib.layer_media_type("gzip", False), f"random {i}"))
    return ib.build_image(built, oci=False, cmd=["sh"])


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    results: dict = {"size_mb": args.size_mb, "layers": args.layers + 1, "repeat": args.repeat}
    try:
        with run_registry() as registry, run_dockerd((registry.host,)) as dockerd:
            t0 = time.perf_counter()
            built = build_image(args.size_mb, args.layers)
            results["build_s"] = round(time.perf_counter() - t0, 2)
            total_bytes = sum(layer.size for layer in built.layers) + len(built.config)
            results["image_bytes"] = total_bytes
            name = f"{registry.host}/bench/random:v1"
            seed = ImageStore(EngineConfig(root=work / "seed", run_root=work / "seed-run"))
            built.register(seed, name)
            results["berth_push_s"] = round(timed(lambda: dist.push(seed, name)), 2)
            shutil.rmtree(work / "seed")

            berth, unpack, docker, skopeo = [], [], [], []
            for i in range(args.repeat):
                root = work / f"berth{i}"
                config = EngineConfig(root=root, run_root=root / "run")
                store = ImageStore(config)
                berth.append(timed(lambda store=store: dist.pull(store, name)))
                # What docker pull also does: unpack each layer for overlayfs.
                image = store.get(name)
                layer_store = LayerStore(config, store.content)
                unpack.append(timed(lambda image=image, layer_store=layer_store: layer_store.ensure(image)))
                shutil.rmtree(root)

                dockerd.docker("rmi", name, check=False)
                docker.append(timed(lambda: dockerd.docker("pull", "-q", name)))

                if shutil.which("skopeo"):
                    target = work / f"skopeo{i}"
                    skopeo.append(timed(lambda target=target: subprocess.run(
                        ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{name}", f"oci:{target}"],
                        check=True, capture_output=True)))
                    shutil.rmtree(target)

            results.update(_figures("berth", berth, total_bytes))
            results.update(_figures("berth_pull_and_unpack",
                                    [a + b for a, b in zip(berth, unpack, strict=True)], total_bytes))
            results.update(_figures("docker", docker, total_bytes))
            if skopeo:
                results.update(_figures("skopeo", skopeo, total_bytes))
            results["ratio_docker_over_berth"] = round(results["docker_median_s"] / results["berth_median_s"], 2)
            results["ratio_docker_over_berth_pull_and_unpack"] = round(
                results["docker_median_s"] / results["berth_pull_and_unpack_median_s"], 2)
            if skopeo:
                results["ratio_skopeo_over_berth"] = round(results["skopeo_median_s"] / results["berth_median_s"], 2)
            results.update(_breakdown(registry.host, built, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for key, value in results.items():
        print(f"{key:>28}: {value}")
    print(json.dumps(results))
    return 0


def _figures(name: str, times: list[float], total_bytes: int) -> dict:
    median = statistics.median(times)
    return {f"{name}_runs_s": [round(t, 3) for t in times], f"{name}_median_s": round(median, 3),
            f"{name}_MBps": round(total_bytes / median / 1e6, 1)}


def _breakdown(host: str, built: ib.BuiltImage, work: Path) -> dict:
    """Time Berth's parts separately: the bare download, sha256, gunzip, and writing with fsync."""
    session = requests.Session()

    def fetch(layer):
        with session.get(f"http://{host}/v2/bench/random/blobs/{layer.digest}", stream=True) as r:
            for _ in r.iter_content(1 << 20):
                pass

    layers = built.layers
    with ThreadPoolExecutor(dist.DOWNLOAD_WORKERS) as pool:
        download = timed(lambda: list(pool.map(fetch, layers)))
    sha = timed(lambda: [hashlib.sha256(layer.blob).digest() for layer in layers])

    def gunzip_hash():
        for layer in layers:
            hashlib.sha256(zlib.decompress(layer.blob, 31)).digest()

    gunzip = timed(gunzip_hash)

    def write_fsync():
        for i, layer in enumerate(layers):
            with open(work / f"w{i}", "wb") as f:
                f.write(layer.blob)
                f.flush()
                os.fsync(f.fileno())

    write = timed(write_fsync)
    return {"part_download_only_s": round(download, 3), "part_sha256_s": round(sha, 3),
            "part_gunzip_and_sha256_s": round(gunzip, 3), "part_write_and_fsync_s": round(write, 3)}


if __name__ == "__main__":
    sys.exit(main())
