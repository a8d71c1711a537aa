"""Benchmark: ``run --rm IMAGE true`` through the engine's Python API, through its CLI (through
the command server, as every command after the first; and on its own), raw
``runc run`` on a prepared bundle, and ``docker run --rm`` (the dockerd that answers, else a
private one this benchmark starts when docker.io is installed); plus the monitor's memory per
idle running container beside containerd-shim's for idle docker containers.

Usage: ``.venv/bin/python bench/run.py [--runs N]``. Prints ONE JSON object on its last line.
Needs root (runc, overlay mounts). Uses a throwaway engine root under /tmp.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.config import EngineConfig  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.supervisor import cliclient  # noqa: E402
from engine.supervisor import launcher as monitors  # noqa: E402
from engine.supervisor.servers import stop_servers  # noqa: E402
from tests.support import imagebuilder as ib  # noqa: E402
from tests.support.dockerd import DOCKERD, run_dockerd  # noqa: E402

IMAGE = "bench/busybox:latest"


def timed_in_turns(fns, runs: int) -> list[list[float]]:
    """Each of ``fns`` once per round (after one warm-up round): their times, per function."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return times


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up: caches, first layer unpack
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def wait_for_path(path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def shim_rss() -> list[int]:
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith("containerd-shim"):
                value = rss_kib(int(comm.parent.name))
                if value:
                    found.append(value)
        except OSError:
            continue
    return found


def docker_reachable() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bb-", dir="/tmp"))
    config = EngineConfig(base / "r", base / "x")
    engine = Engine(config).containers
    ib.busybox_image(engine.images, IMAGE)
    result: dict = {"runs": args.runs}
    idle = []
    try:
        # Four ways to run the same thing, measured in turns (one of each per round) so
        # that a machine that slows down or speeds up meanwhile skews none of them alone.
        # 1. the Python API, in its steady state: the first start brings up the run root's
        #    monitor fork server (engine/supervisor/forkserver.py), the next ones use it
        def api_run():
            engine.run(IMAGE, ["true"], detach=False, remove=True)

        # 2. the CLI, with the real interpreter (no pyenv shim); -I: no user site, no env.
        #    Through the run root's command server, as every command after the first runs
        #    (engine/supervisor/cliclient.py), and on its own.
        python = os.path.realpath(sys.executable) if not (Path(sys.prefix) / "pyvenv.cfg").exists() \
            else sys.executable
        bootstrap = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import runpy; "
                     "runpy.run_module('engine', run_name='__main__')")
        cli_argv = [python, "-I", "-c", bootstrap, "--root", str(config.root), "--run-root",
                    str(config.run_root), "run", "--rm", IMAGE, "true"]

        def cli_run(server: str):
            subprocess.run(cli_argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           env=dict(os.environ, BERTH_ENGINE_CLI_SERVER=server))

        # 3. raw runc on a prepared bundle: the very bundle the engine made for a container
        prepared = engine.create(IMAGE, ["true"], name="bench-bundle")
        bundle = prepared.dir / "bundle"
        spec = json.loads((bundle / "config.json").read_text())
        spec["linux"]["cgroupsPath"] = "/berth/bench-raw"
        (bundle / "config.json").write_text(json.dumps(spec))
        runc_root = base / "runc-raw"
        runc = engine.runtime.path

        def raw_run():
            subprocess.run([runc, "--root", str(runc_root), "run", "--bundle", str(bundle), "bench-raw"],
                           check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

        api_run()
        cli_run("1")  # brings the command server up
        wait_for_path(monitors.forkserver_paths(config.run_root)[0])
        wait_for_path(cliclient.server_paths(str(config.run_root))[0])
        api, cli, cli_alone, raw = timed_in_turns(
            [api_run, lambda: cli_run("1"), lambda: cli_run("0"), raw_run], args.runs)
        # For the record: raw runc alone, runs back to back (no other work in between; the
        # kernel's clean-up of the previous container's namespaces is runc's own only).
        raw_alone = timed(raw_run, args.runs)

        # 4. docker: the one that answers, else a private dockerd of our own (no bridge,
        #    no iptables: it touches nothing else on the host), when docker.io is installed
        tar = base / "rootfs.tar"
        subprocess.run(["tar", "-C", spec["root"]["path"], "-cf", str(tar), "."], check=True)
        with contextlib.ExitStack() as stack:
            docker_cli = None
            if docker_reachable():
                result["docker"] = "the running dockerd"
                docker_cli = lambda *a: subprocess.run(["docker", *a], check=True, capture_output=True)  # noqa: E731
            elif Path(DOCKERD).exists():

                daemon = stack.enter_context(run_dockerd())
                result["docker"] = "a private dockerd started by this benchmark"
                docker_cli = lambda *a: daemon.docker(*a)  # noqa: E731
            if docker_cli is not None:
                docker_cli("import", str(tar), "berth-bench:latest")
                docker = timed(lambda: docker_cli("run", "--rm", "--network", "none", "berth-bench:latest", "true"),
                               args.runs)
                result["docker_run_s"] = round(statistics.median(docker), 4)
                # containerd-shim's memory beside our monitor's: a few idle docker containers
                for i in range(3):
                    docker_cli("run", "-d", "--network", "none", "--name", f"berth-idle{i}",
                               "berth-bench:latest", "sleep", "600")
                time.sleep(0.5)
                shims = shim_rss()
                for i in range(3):
                    docker_cli("rm", "-f", f"berth-idle{i}")
            else:
                docker, shims = None, []
                result["docker_run_s"] = "not installed"

        # 5. the monitor's memory per idle running container
        for i in range(5):
            c, _ = engine.run(IMAGE, ["sleep", "600"], name=f"idle{i}")
            idle.append(c.id)
        time.sleep(0.5)
        rss = [rss_kib(engine.get(i).state["MonitorPid"]) for i in idle]

        result.update({
            "api_run_rm_s": round(statistics.median(api), 4),
            "cli_run_rm_s": round(statistics.median(cli), 4),
            "cli_without_server_run_rm_s": round(statistics.median(cli_alone), 4),
            "runc_run_s": round(statistics.median(raw), 4),
            "runc_run_back_to_back_s": round(statistics.median(raw_alone), 4),
            "api_vs_runc_back_to_back": round(statistics.median(api) / statistics.median(raw_alone), 2),
            "api_vs_runc": round(statistics.median(api) / statistics.median(raw), 2),
            "cli_vs_runc": round(statistics.median(cli) / statistics.median(raw), 2),
            "cli_vs_docker": round(statistics.median(cli) / statistics.median(docker), 2) if docker else None,
            "target_api_within_1_5x_runc": statistics.median(api) <= 1.5 * statistics.median(raw),
            "target_cli_third_of_docker": (statistics.median(cli) <= statistics.median(docker) / 3)
            if docker else "docker not running",
            "api_run_rm_min_s": round(min(api), 4),
            "cli_run_rm_min_s": round(min(cli), 4),
            "runc_run_min_s": round(min(raw), 4),
            "api_vs_runc_min": round(min(api) / min(raw), 2),
            "load_average_1m": os.getloadavg()[0],  # other work on the machine skews every figure
            "monitor_rss_kib_median": int(statistics.median([r for r in rss if r])),
            "monitor_rss_kib": rss,
            "containerd_shim_rss_kib_median": int(statistics.median(shims)) if shims else "no shim running",
            "python": python,
        })
    finally:
        for container_id in idle:
            try:
                engine.remove(container_id, force=True)
            except Exception as exc:  # keep cleaning
                print(f"cleanup: {exc}", file=sys.stderr)
        for c in engine.list(all=True):
            engine.remove(c["Id"], force=True)
        stop_servers(config.run_root)
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
