"""A private ``dockerd`` (Debian's docker.io) for interoperability tests and the bench.

It gets its own data root, exec root, pidfile and unix socket under a temp dir,
no bridge and no iptables changes, so it touches nothing else on the host. On
exit it is stopped (with the containerd it started) and every mount left under
its directories is unmounted before they are removed. If it cannot start, the
caller fails with dockerd's own last words: these tests must never pass by
being skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client, matching the daemon


@dataclass
class Dockerd:
    workdir: Path
    socket: Path
    process: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_CONFIG": str(self.workdir / "client")}

    def docker(self, *args: str, check: bool = True, timeout: float = 120,
               input: bytes | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([DOCKER, *args], env=self.env, capture_output=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): "
                                 f"{result.stderr.decode(errors='replace')[-2000:]}")
        return result


@contextlib.contextmanager
def run_dockerd(insecure_registries: tuple[str, ...] = (), timeout: float = 60) -> Iterator[Dockerd]:
    for binary in (DOCKERD, DOCKER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing: apt-get install docker.io (the interop tests need it)")
    # A short path: the socket path must stay under 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="berth-dockerd-", dir="/tmp"))
    socket = workdir / "docker.sock"
    command = [DOCKERD, "--data-root", str(workdir / "data"), "--exec-root", str(workdir / "exec"),
               "--pidfile", str(workdir / "docker.pid"), "-H", f"unix://{socket}",
               "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"]
    for registry in insecure_registries:
        command += ["--insecure-registry", registry]
    log = open(workdir / "dockerd.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    daemon = Dockerd(workdir, socket, process)
    try:
        _wait_ready(daemon, workdir / "dockerd.log", timeout)
        yield daemon
    finally:
        _stop(process)
        _kill_leftovers(workdir)
        log.close()
        _unmount_under(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(daemon: Dockerd, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            pytest.fail(f"dockerd exited with {daemon.process.returncode} at start: "
                        f"{log.read_text(errors='replace')[-3000:]}")
        if daemon.socket.exists() and daemon.docker("version", check=False, timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    pytest.fail(f"dockerd did not answer within {timeout}s: {log.read_text(errors='replace')[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # dockerd stops its containerd itself
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _kill_leftovers(workdir: Path) -> None:
    """Kill what this daemon started and left (its containerd, shims): their command lines name our dir."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(workdir).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def _unmount_under(path: Path) -> None:
    prefix = str(path) + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    for point in sorted((p for p in points if p.startswith(prefix) or p == str(path)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
