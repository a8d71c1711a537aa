"""Stats from the container's cgroups, computed as ``docker stats`` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.containers import stats
from engine.errors import Conflict


def test_busy_container_uses_a_cpu_and_memory_within_its_limit(engine):
    engine.run("test/busybox", ["sh", "-c", "while true; do :; done"], name="busy", memory="64m")
    engine.run("test/busybox", ["sleep", "100"], name="idle")
    busy = list(stats.stream(engine, "busy", interval=0.5, count=2))
    assert len(busy) == 2
    # One shell spinning: up to one CPU (100 %), less on a loaded machine; never more than all CPUs.
    assert all(15 < s["cpu_percent"] <= 100 * (os.cpu_count() or 1) + 5 for s in busy), busy
    assert busy[-1]["memory_limit"] == 64 * 1024 * 1024
    assert 0 < busy[-1]["memory_usage"] < 64 * 1024 * 1024
    assert busy[-1]["pids"] == 1
    idle = stats.once(engine, "idle")
    assert idle["cpu_percent"] < 5
    assert idle["pids"] == 1
    assert idle["memory_limit"] > 64 * 1024 * 1024  # no limit: the host's memory


def test_cpu_percent_formula_matches_docker():
    previous = {"cpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 10_000_000_000,
                              "online_cpus": 2}}
    current = {"id": "x", "name": "/x", "read": 0,
               "cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000}, "system_cpu_usage": 12_000_000_000,
                             "online_cpus": 2},
               "memory_stats": {"usage": 300, "limit": 1000, "stats": {"total_inactive_file": 100}},
               "networks": {"lo": {"rx_bytes": 5, "tx_bytes": 7}}, "blkio": {"read_bytes": 1, "write_bytes": 2},
               "pids_stats": {"current": 3}}
    summary = stats.summarize(current, previous)
    assert summary["cpu_percent"] == 50.0  # 0.5 s of 2 s system time x 2 CPUs
    assert summary["memory_usage"] == 200 and summary["memory_percent"] == 20.0
    assert (summary["net_rx"], summary["net_tx"], summary["block_read"], summary["pids"]) == (5, 7, 1, 3)


def test_stats_of_a_stopped_container_is_an_error(engine):
    c = engine.create("test/busybox", ["true"])
    with pytest.raises(Conflict):
        stats.once(engine, c.id)


def test_cli_stats_no_stream(engine):
    engine.run("test/busybox", ["sleep", "100"], name="s1")
    out = subprocess.run([sys.executable, "-m", "engine", "--root", str(engine.config.root), "--run-root",
                          str(engine.config.run_root), "stats", "--no-stream", "--format", "json", "s1"],
                         capture_output=True, text=True, check=True, timeout=30)
    row = json.loads(out.stdout.splitlines()[-1])
    assert row["name"] == "s1" and row["pids"] == 1
