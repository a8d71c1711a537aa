"""Container logs: both streams, timestamps, tail, since/until, follow (sync and async),
long and partial lines, rotation, and a million-line log read without loading it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from engine.base.clock import now_rfc3339
from engine.containers.inputs import parse_time
from engine.errors import InvalidArgument
from engine.logs import reader as logs
from engine.logs.writer import MAX_LINE, LogWriter


def test_both_streams_with_times_in_order(engine):
    c, code = engine.run("test/busybox", ["sh", "-c", "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three"],
                      detach=False)
    records = list(engine.logs(c.id))
    assert [(r["stream"], r["log"]) for r in records] == [
        ("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n")]
    times = [r["time"] for r in records]
    assert times == sorted(times) and all(len(t) == 30 and t.endswith("Z") for t in times)
    assert [r["log"] for r in engine.logs(c.id, stderr=False)] == ["one\n", "three\n"]
    assert [r["log"] for r in engine.logs(c.id, stdout=False)] == ["two\n"]
    assert [r["log"] for r in engine.logs(c.id, tail=1)] == ["three\n"]
    assert list(engine.logs(c.id, tail=0)) == []


def test_cli_logs_tail_and_timestamps(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "seq 1 5; echo oops >&2"], detach=False)
    base = [sys.executable, "-m", "engine", "--root", str(engine.config.root),
            "--run-root", str(engine.config.run_root), "logs"]
    out = subprocess.run(base + ["--tail", "3", c.id], capture_output=True, text=True, check=True)
    assert out.stdout == "4\n5\n" and out.stderr == "oops\n"
    out = subprocess.run(base + ["-t", "--tail", "1", c.id], capture_output=True, text=True, check=True)
    stamp, text = out.stderr.split(" ", 1)
    assert text == "oops\n" and stamp.startswith(time.strftime("%Y-", time.gmtime()))


def test_since_and_until(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "echo early; sleep 1; echo late"], detach=False)
    records = list(engine.logs(c.id))
    middle = parse_time(records[0]["time"]) + 0.5  # between the two lines (Unix seconds)
    assert [r["log"] for r in engine.logs(c.id, since=middle)] == ["late\n"]
    assert [r["log"] for r in engine.logs(c.id, until=middle)] == ["early\n"]
    assert [r["log"] for r in engine.logs(c.id, since="1h")] == ["early\n", "late\n"]
    assert list(engine.logs(c.id, since=time.time() + 60)) == []


def test_long_and_partial_lines(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'no newline'"],
                      detach=False)
    records = list(engine.logs(c.id))
    assert "".join(r["log"] for r in records) == "x" * 40000 + "\nno newline"
    assert [len(r["log"]) for r in records[:2]] == [MAX_LINE, MAX_LINE]
    assert records[0].get("partial") is True and records[2].get("partial") is None
    assert records[-1] == {**records[-1], "log": "no newline", "partial": True}


def test_follow_sync_until_the_container_stops(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done"])
    started = time.monotonic()
    lines = [r["log"] for r in engine.logs(c.id, follow=True)]
    assert lines == ["1\n", "2\n", "3\n"]
    assert time.monotonic() - started < 5


async def test_follow_async(engine):
    c, _ = engine.run("test/busybox", ["sh", "-c", "echo a; sleep 0.3; echo b >&2; sleep 0.3"])
    seen = []
    async for record in engine.logs_async(c.id):
        seen.append((record["stream"], record["log"]))
    assert seen == [("stdout", "a\n"), ("stderr", "b\n")]
    await asyncio.sleep(0)


def test_rotation_keeps_reading_across_files(tmp_path):
    path = tmp_path / "json.log"
    writer = LogWriter(str(path), max_size=4096, max_files=3)
    follower = logs.Follower(path, {"stdout"})
    for i in range(200):
        writer.feed("stdout", f"line {i}\n".encode())
    assert (tmp_path / "json.log.1").exists()
    # Rotation keeps at most 3 files; the newest lines are all there and in order.
    texts = [r["log"] for r in logs.read(path)]
    assert texts[-1] == "line 199\n" and texts == sorted(texts, key=lambda t: int(t.split()[1]))
    assert [r["log"] for r in logs.read(path, tail=3)] == ["line 197\n", "line 198\n", "line 199\n"]
    got = follower.poll()
    assert got and got[-1]["log"] == "line 199\n"


def test_a_million_lines_are_read_without_loading_them(tmp_path):
    path = tmp_path / "json.log"
    base = time.time_ns() - 2_000_000 * 1000
    with open(path, "w") as f:
        for i in range(1_000_000):
            f.write(f'{{"time": "{now_rfc3339(base + i * 1000)}", "stream": "stdout", '
                    f'"log": "line {i}\\n"}}\n')
    started = time.monotonic()
    assert [r["log"] for r in logs.read(path, tail=2)] == ["line 999998\n", "line 999999\n"]
    since = now_rfc3339(base + 999_990 * 1000)
    assert len(list(logs.read(path, since=since))) == 10
    assert time.monotonic() - started < 0.5  # bisect and backwards reads, not a scan


def test_times_are_taken_to_the_nanosecond():
    assert logs.parse_when("2026-11-28T21:28:03.255206123Z") == "2026-11-28T21:28:03.255206123Z"
    assert logs.parse_when("2026-11-28T22:28:03.5+01:00") == "2026-11-28T21:28:03.500000000Z"
    assert logs.parse_when("1700000000.123456789") == "2023-11-14T22:13:20.123456789Z"
    with pytest.raises(InvalidArgument):
        logs.parse_when("yesterday-ish")


def test_a_follower_started_before_the_log_exists_gets_each_line_once(tmp_path):
    path = tmp_path / "json.log"
    follower = logs.Follower(path, {"stdout"})  # the container has not written yet
    writer = LogWriter(str(path), max_size=1 << 20, max_files=2)
    writer.feed("stdout", b"first\n")
    backlog = [r["log"] for r in logs.read(path, stop_at=follower.position())]
    assert backlog + [r["log"] for r in follower.poll()] == ["first\n"]
