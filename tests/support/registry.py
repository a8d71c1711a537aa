"""Debian's ``docker-registry`` (distribution 2.8) on a free loopback port, for tests and the bench.

``run_registry()`` starts one with a generated config and its storage in a temp
dir, waits until ``/v2/`` answers, and on exit stops it and removes its data.
With ``users={"alice": "secret"}`` it requires htpasswd Basic auth (bcrypt, made
by ``htpasswd -Bbn`` from apache2-utils). The pytest fixtures below wrap it.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.services import free_port

REGISTRY_BIN = "/usr/bin/docker-registry"
HTPASSWD_BIN = "/usr/bin/htpasswd"


@dataclass
class Registry:
    host: str  # "127.0.0.1:PORT"
    data: Path
    users: dict[str, str]
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def upload(client, repo: str, built, tag: str) -> str:
    """Push a built image (``tests.support.imagebuilder``) with a ``RegistryClient``: its
    blobs, then its manifest; the manifest's digest."""
    for digest, data in built.blobs.items():
        if digest != built.manifest_digest:
            client.upload_blob(repo, digest, len(data), lambda data=data: io.BytesIO(data))
    return client.put_manifest(repo, tag, built.manifest, built.media_type)


def _htpasswd_line(user: str, password: str) -> str:
    out = subprocess.run([HTPASSWD_BIN, "-Bbn", user, password], check=True, capture_output=True, text=True)
    return out.stdout.strip()


@contextlib.contextmanager
def run_registry(users: dict[str, str] | None = None, delete: bool = False) -> Iterator[Registry]:
    if not Path(REGISTRY_BIN).exists():
        pytest.fail(f"{REGISTRY_BIN} is missing: apt-get install docker-registry")
    workdir = Path(tempfile.mkdtemp(prefix="berth-registry-"))
    port = free_port()
    auth = ""
    if users:
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text("".join(_htpasswd_line(u, p) + "\n" for u, p in users.items()))
        auth = f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n"
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        f"  delete:\n    enabled: {'true' if delete else 'false'}\n"
        "  maintenance:\n    uploadpurging:\n      enabled: false\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n"
        + auth
    )
    log = open(workdir / "registry.log", "wb")
    process = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    registry = Registry(f"127.0.0.1:{port}", workdir / "data", dict(users or {}), process)
    try:
        _wait_ready(registry, workdir / "registry.log")
        yield registry
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(registry: Registry, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            pytest.fail(f"docker-registry exited with {registry.process.returncode}: {log.read_text()[-2000:]}")
        try:
            requests.get(f"{registry.url}/v2/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    pytest.fail(f"docker-registry did not answer on {registry.host} within {timeout}s")


@pytest.fixture(scope="module")
def open_registry() -> Iterator[Registry]:
    """An anonymous registry with deletes enabled, shared by the tests of a module."""
    with run_registry(delete=True) as registry:
        yield registry


@pytest.fixture(scope="module")
def auth_registry() -> Iterator[Registry]:
    """A registry that requires htpasswd Basic auth (user ``alice``, password ``wonderland``)."""
    with run_registry(users={"alice": "wonderland"}) as registry:
        yield registry
