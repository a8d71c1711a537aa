"""A container or network record the engine cannot read is never silently skipped: a
listing that skipped it would tell the console the object is gone (and it would delete
its mirror row and ownership). A container is listed as ``dead`` with the reason, as
Docker shows one it cannot load, and ``rm -f`` still removes it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.errors import Conflict, EngineError
from tests.support.containers import all_leftovers


def cli(engine, *args):
    base = [sys.executable, "-m", "engine", "--root", str(engine.config.root),
            "--run-root", str(engine.config.run_root)]
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("record", ["state.json", "config.json"])
def test_a_corrupt_record_is_listed_dead_and_rm_f_removes_it(engine, record):
    container = engine.create("test/busybox:latest", ["true"], name="broken")
    kept = engine.create("test/busybox:latest", ["true"], name="fine")
    (container.dir / record).write_text('{"Status": "runn')  # torn, as after a disk fault
    rows = {row["Id"]: row for row in engine.list(all=True)}
    assert set(rows) == {container.id, kept.id}
    row = rows[container.id]
    assert (row["State"], row["Names"]) == ("dead", ["/broken"])
    assert "unreadable" in row["Error"] and record in row["Error"]
    assert rows[kept.id]["State"] == "created"
    out = cli(engine, "ps", "-a", "--format", "json")
    assert out.returncode == 0, out.stderr
    listed = {r["Id"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert listed[container.id]["State"] == "dead"
    # Reading it says why; acting on it other than removing does nothing.
    with pytest.raises(EngineError, match="unreadable"):
        engine.start("broken")
    with pytest.raises(Conflict, match="force"):
        engine.remove("broken")
    out = cli(engine, "rm", "-f", "broken")
    assert out.returncode == 0, out.stderr
    assert [row["Id"] for row in engine.list(all=True)] == [kept.id]
    engine.remove(kept.id)
    assert all_leftovers(engine) == []
    # its name is free again
    engine.remove(engine.create("test/busybox:latest", ["true"], name="broken").id)


def test_an_unreadable_network_record_makes_the_listing_fail(engine):
    networks = engine.networks
    net = networks.create("torn")
    record = networks.root / f"{net['Id']}.json"
    whole = record.read_text()
    record.write_text("{")
    with pytest.raises(EngineError, match=f"network record {net['Id']}.json is unreadable"):
        networks.list()
    record.write_text(whole)
    networks.remove("torn")
