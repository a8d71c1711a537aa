"""Benchmark: the cost of networks and published ports.

- ``run -d`` latency (median) on ``private``, the default ``bridge`` and ``bridge`` with ``-p``;
- the keeper's memory (RSS) per container on a bridge network;
- download throughput from busybox ``httpd`` through a published port on 127.0.0.1;
- a build of a three-step Dockerfile, then the same build from the cache.

Usage: ``.venv/bin/python bench/networks.py [--runs N]``. Prints ONE JSON object on its last
line. Needs root. Uses a throwaway engine root under /tmp and removes what it made.
Traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.build.builder import Builder  # noqa: E402
from engine.net.networks import Networks  # noqa: E402
from tests.support.containers import cleanup, make_engine, wait_for  # noqa: E402


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    engine, _ = make_engine()
    nets = Networks(engine.config)
    result: dict = {}
    try:
        for label, options in (("private", {}), ("bridge", {"network": "bridge"}),
                               ("bridge_publish", {"publish": ["80"]})):
            engine.remove(engine.run("test/busybox", ["sleep", "30"], **options)[0].id, force=True)
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                container, _ = engine.run("test/busybox", ["sleep", "30"], **options)
                times.append(time.perf_counter() - started)
                engine.remove(container.id, force=True)
            result[f"run_ms_{label}"] = round(statistics.median(times) * 1000, 1)
        script = ("mkdir /www && dd if=/dev/zero of=/www/big bs=1M count=64 2>/dev/null && echo ready && "
                  "exec httpd -f -p 80 -h /www")
        container, _ = engine.run("test/busybox", ["sh", "-c", script], publish=["80"])
        wait_for(lambda: any("ready" in r["log"] for r in engine.logs(container.id)), 30)
        result["keeper_rss_kb"] = rss_kb(nets.endpoint(container.id)["Keeper"][0])
        port = nets.host_port(container.id, 80)
        started = time.perf_counter()
        size = len(urllib.request.urlopen(f"http://127.0.0.1:{port}/big", timeout=30).read())
        result["relay_mb_per_s"] = round(size / (time.perf_counter() - started) / 1e6, 1)
        engine.remove(container.id, force=True)
        with tempfile.TemporaryDirectory() as ctx:
            Path(ctx, "Dockerfile").write_text("FROM test/busybox\nCOPY f /f\nRUN cat /f > /g\nCMD [\"cat\", \"/g\"]\n")
            Path(ctx, "f").write_text("x\n")
            builder = Builder(engine.config, engine, network="none")
            for label in ("build_ms", "build_cached_ms"):
                started = time.perf_counter()
                builder.build(ctx)
                result[label] = round((time.perf_counter() - started) * 1000, 1)
    finally:
        cleanup(engine)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
