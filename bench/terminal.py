"""Benchmark: keystroke echo round trip through the terminal websocket (real daphne, TCP):
the client sends one key, the shell (busybox sh in a container, through runc and the pty)
echoes it, the client receives it. Median and p99 over N keys.

Usage: ``.venv/bin/python bench/terminal.py [--keys N]``. Prints ONE JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from live_setup import Console  # noqa: E402
from wsclient import WebSocket  # noqa: E402


async def output_until(ws, needle: bytes) -> bytes:
    got = b""
    while needle not in got:
        message = await ws.recv()
        if message is None:
            raise RuntimeError(f"closed: {getattr(ws, 'close_code', None)}")
        if message[:1] == b"0":
            got += message[1:]
    return got


async def measure(console: Console, pk: int, keys: int, token: str) -> dict:
    ws = await WebSocket.connect("127.0.0.1", console.port,
                                 f"/ws/containers/{pk}/terminal/?cols=80&rows=24&token={token}", console.cookie)
    await output_until(ws, b"# ")
    times = []
    for i in range(keys):
        key = b"abcdefghij"[i % 10:i % 10 + 1]
        started = time.perf_counter()
        await ws.send(b"0" + key)
        await output_until(ws, key)
        times.append((time.perf_counter() - started) * 1000)
        if i % 50 == 49:
            await ws.send(b"0\x15")  # ^U: clear the line
            await asyncio.sleep(0.02)
    await ws.send(b"0exit\r")
    await ws.close()
    times.sort()
    return {"keys": keys, "echo_ms_median": round(statistics.median(times), 3),
            "echo_ms_p99": round(times[max(0, int(len(times) * 0.99) - 1)], 3),
            "transport": "daphne over TCP; websocket -> pty -> runc -> container pty -> busybox sh and back"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=500)
    args = parser.parse_args()
    console = Console()
    try:
        container, _ = console.containers.run("bench/busybox:latest", ["sleep", "3600"], name="bench-terminal")
        pk = console.mirror(container.id)
        console.start_daphne()
        result = asyncio.run(measure(console, pk, args.keys, console.terminal_token(pk)))
    finally:
        console.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
