"""Benchmark: container stdout -> log file -> the logs websocket (real daphne, TCP) -> client.

Phase 1: the container writes N lines as fast as it can (busybox ``seq``); lines per second
delivered to the client, from the first to the last line received (and, for comparison, the
rate at which the container's monitor wrote them to the log: the ceiling for any reader), then
the whole log again, already written, from the file to the client: the websocket path alone.
Phase 2: paced lines (one every 10 ms); latency from the monitor's timestamp of the line
(when it read the container's write) to its receipt by the client: median and p99.
Beside them, ``docker logs -f`` on the same machine when a private dockerd can be started.

Usage: ``.venv/bin/python bench/logs.py [--lines N]``. Prints ONE JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from live_setup import Console  # noqa: E402
from wsclient import WebSocket  # noqa: E402

PACED = 300


def stamp(rfc3339: str) -> float:
    main, _, frac = rfc3339.rstrip("Z").partition(".")
    return datetime.fromisoformat(main + "+00:00").timestamp() + float("0." + (frac or "0"))


async def measure(console: Console, pk: int, rootfs: Path, lines: int) -> dict:
    ws = await WebSocket.connect("127.0.0.1", console.port, f"/ws/containers/{pk}/logs/", console.cookie)
    await ws.send(json.dumps({"t": "open", "tail": 0}))
    while True:
        message = await ws.recv()
        if message.startswith('{"t": "live"'):
            break
    (rootfs / "go").write_text("go")
    received = 0
    first = last = None
    latencies = []
    while True:
        message = await ws.recv()
        if message is None:
            raise RuntimeError(f"closed: {getattr(ws, 'close_code', None)}")
        now = time.time()
        head, _, body = message.partition("\n")
        header = json.loads(head)
        if header["t"] == "ping":
            await ws.send('{"t": "pong"}')
        if header["t"] != "lines":
            continue
        await ws.send(json.dumps({"t": "ack", "seq": header["seq"]}))
        if received < lines:
            if first is None:
                first = time.perf_counter()
                written_first = stamp(json.loads(body[:body.index("\n")])["time"])
            received += header["n"]
            if received >= lines:
                last = time.perf_counter()
                records = [json.loads(x) for x in body.split("\n") if x]
                written_last = stamp(records[header["n"] - (received - lines) - 1]["time"])
            continue
        for line in body.split("\n"):
            if line:
                latencies.append((now - stamp(json.loads(line)["time"])) * 1000)
        if len(latencies) >= PACED:
            break
    await ws.close()
    latencies.sort()
    # The websocket path alone: the whole log (already written) from the file to the client.
    ws = await WebSocket.connect("127.0.0.1", console.port, f"/ws/containers/{pk}/logs/", console.cookie)
    await ws.send(json.dumps({"t": "open", "tail": None}))
    started, got = time.perf_counter(), 0
    while got < lines:
        message = await ws.recv()
        head = json.loads(message.partition("\n")[0])
        if head["t"] == "lines":
            got += head["n"]
            await ws.send(json.dumps({"t": "ack", "seq": head["seq"]}))
    backlog_rate = got / (time.perf_counter() - started)
    await ws.close()
    return {"lines": lines, "lines_per_second": round(lines / (last - first)),
            "monitor_lines_per_second": round(lines / max(1e-6, written_last - written_first)),
            "backlog_lines_per_second": round(backlog_rate),
            "latency_ms_median": round(statistics.median(latencies), 2),
            "latency_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1], 2)}


SCRIPT = ("while [ ! -e /go ]; do usleep 10000; done; seq 1 {lines}; i=0; "
          "while [ $i -lt {paced} ]; do echo paced $i; usleep 10000; i=$((i+1)); done; sleep 1000")
PACED_LINES = PACED * 2  # some arrive in the last batch of the fast phase


def docker_logs(lines: int) -> dict | str:
    """``docker logs -f`` of the same workload on a private dockerd (its own data root)."""
    try:
        from tests.support.dockerd import run_dockerd
        from tests.support.imagebuilder import busybox_image  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        return f"not measured: {exc}"
    import tarfile
    import tempfile

    try:
        with run_dockerd() as dockerd:
            with tempfile.TemporaryDirectory() as tmp:
                tar = Path(tmp) / "rootfs.tar"
                with tarfile.open(tar, "w") as t:
                    t.add("/bin/busybox", arcname="bin/busybox")
                    for name in ("sh", "seq", "usleep", "sleep", "echo"):
                        info = tarfile.TarInfo(f"bin/{name}")
                        info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                        t.addfile(info)
                dockerd.docker("import", str(tar), "bench/busybox:latest")
            script = SCRIPT.replace("while [ ! -e /go ]; do usleep 10000; done; ", "sleep 1; ").format(
                lines=lines, paced=0)
            cid = dockerd.docker("run", "-d", "--network", "none", "bench/busybox:latest", "sh", "-c",
                                 script).stdout.decode().strip()
            proc = subprocess.Popen(["/usr/bin/docker", "logs", "-f", cid], env=dockerd.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            count, first = 0, None
            for _ in proc.stdout:
                first = first or time.perf_counter()
                count += 1
                if count >= lines:
                    break
            elapsed = time.perf_counter() - first
            proc.kill()
            dockerd.docker("rm", "-f", cid, check=False)
            return {"lines_per_second": round(lines / elapsed)}
    except BaseException as exc:  # noqa: BLE001 - pytest.fail raises an Exception subclass of BaseException
        return f"not measured: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--no-docker", action="store_true")
    args = parser.parse_args()
    console = Console()
    try:
        container, _ = console.containers.run("bench/busybox:latest", ["sh", "-c", SCRIPT.format(
            lines=args.lines, paced=PACED_LINES)], name="bench-logs")
        pk = console.mirror(container.id)
        console.start_daphne()
        result = asyncio.run(measure(console, pk, Path(container.config["Rootfs"]), args.lines))
    finally:
        console.close()
    result["transport"] = "daphne over TCP, one client, acknowledged batches"
    result["docker_logs_f"] = "not measured: --no-docker" if args.no_docker else docker_logs(args.lines)
    if isinstance(result["docker_logs_f"], dict):
        result["ratio_to_docker"] = round(result["lines_per_second"] / result["docker_logs_f"]["lines_per_second"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
