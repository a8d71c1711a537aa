"""A full disk under the engine root (issue 13, item 1): monitors live on, drop what they
cannot write and say so, keep the exit code; commands answer in one line."""

from __future__ import annotations

import json
import os
import re

import pytest

from engine.base.proc import process_start_time
from engine.base.space import RESERVE_SIZE
from engine.distribution.registry import RegistryClient
from tests.support.containers import all_leftovers, wait_for
from tests.support.imagebuilder import build_image, file
from tests.support.registry import upload

pytestmark = pytest.mark.root

# The counter goes to the log and to a file off the full disk: it tells how far the container
# got, i.e. that it never blocked on a full pipe.
COUNTER = ["sh", "-c", "i=0; while true; do echo line $i; echo $i > /out/n; i=$((i+1)); sleep 0.01; done"]


def monitor_alive(engine, ref) -> bool:
    state = engine.get(ref).state
    return process_start_time(state["MonitorPid"]) == state["MonitorStart"]


def counter(fe) -> int:
    try:
        return int((fe.outside / "n").read_text())
    except (OSError, ValueError):  # between the shell's truncate and its write
        return -1


def records(engine, ref) -> list[dict]:
    return list(engine.logs(ref))


def number(record) -> int:
    return int(record["log"].split()[1])


def index_of_dropped(engine, ref) -> int:
    return next(i for i, r in enumerate(records(engine, ref)) if r.get("dropped"))


def test_a_full_disk_does_not_kill_the_monitor(full_engine):
    fe, engine = full_engine, full_engine.engine
    c, _ = engine.run("test/busybox", COUNTER, name="talker", volumes=[f"{fe.outside}:/out"])
    wait_for(lambda: len(records(engine, "talker")) > 5)
    fe.disk.fill()
    before = counter(fe)
    # well past a pipe's 64 KiB if nobody drained it: ~15 bytes a line, a few hundred lines
    wait_for(lambda: counter(fe) > before + 200, timeout=20)
    assert monitor_alive(engine, "talker")
    fe.disk.free()
    wait_for(lambda: any(r.get("dropped") for r in records(engine, "talker")), timeout=10)
    # logging goes on after the record, and the record accounts for exactly the lines missing
    wait_for(lambda: len(records(engine, "talker")) > index_of_dropped(engine, "talker") + 5)
    logged = records(engine, "talker")
    at = index_of_dropped(engine, "talker")
    assert [r for r in logged if r.get("dropped")] == [logged[at]]
    last_before, first_after = number(logged[at - 1]), number(logged[at + 1])
    assert logged[at]["dropped"]["lines"] == first_after - last_before - 1 > 100
    assert logged[at]["dropped"]["bytes"] == sum(len(f"line {n}\n") for n in range(last_before + 1, first_after))
    assert "lines" in logged[at]["log"] and "dropped: no space left on device" in logged[at]["log"]
    numbers = [number(r) for r in logged if not r.get("dropped")]
    assert numbers == sorted(numbers)
    raw = open(c.config["LogPath"], "rb").read()  # no record was cut in the middle
    assert all(json.loads(line) for line in raw.splitlines())
    engine.stop("talker", timeout=1)
    assert engine.inspect("talker")["State"]["ExitCode"] == 137 or \
        engine.inspect("talker")["State"]["ExitCode"] == 143


def leftovers(fe) -> list[str]:
    """What containers left (their mounts, runc state, directories), the tmpfs aside."""
    return [x for x in all_leftovers(fe.engine) if x != f"mount {fe.config.root}"]


def one_line_error(result) -> str:
    """A failed command: non-zero, and one line on stderr, no traceback."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def ok(result) -> str:
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    return result.stdout


def test_every_command_answers_on_a_full_disk(full_engine, open_registry):
    fe, engine = full_engine, full_engine.engine
    root = str(fe.config.root)
    built = build_image([[file("/payload", os.urandom(300_000))]])  # no blob of it is here yet
    upload(RegistryClient(open_registry.host), "fault/busybox", built, "1")
    engine.run("test/busybox", COUNTER, name="talker", volumes=[f"{fe.outside}:/out"], restart="always")
    engine.run("test/busybox", ["sleep", "600"], name="sleeper")
    done, _ = engine.run("test/busybox", ["sh", "-c", "echo done; exit 3"], name="done")
    assert engine.wait(done.id) == 3
    ok(fe.cli("volume", "create", "scratch"))
    ok(fe.cli("network", "create", "faultnet"))
    fe.disk.fill()
    ids = sorted(engine.ids())
    snapshots = sorted(p.name for p in (fe.config.root / "snapshots").iterdir())

    assert "talker" in ok(fe.cli("ps", "-a")) and "Exited (3)" in ok(fe.cli("ps", "-a"))
    assert ok(fe.cli("logs", "done")) == "done\n"
    assert json.loads(ok(fe.cli("inspect", "talker")))[0]["State"]["Running"]
    # What needs room fails in one line and leaves nothing behind.
    no_space = f"Error: no space left on {root} (free 0B)"
    assert one_line_error(fe.cli("run", "-d", "--name", "new", "test/busybox", "true")) == no_space
    assert one_line_error(fe.cli("exec", "talker", "true")) == no_space
    assert sorted(engine.ids()) == ids and not (fe.config.root / "containers" / "names" / "new").exists()
    assert sorted(p.name for p in (fe.config.root / "snapshots").iterdir()) == snapshots
    assert one_line_error(fe.cli("start", "done")) == no_space
    assert "Exited (3)" in ok(fe.cli("ps", "-a", "--filter", "name=done"))
    message = one_line_error(fe.cli("pull", f"{open_registry.host}/fault/busybox:1"))
    assert re.fullmatch(rf"Error: no space left on {re.escape(root)} \(needed ~[\d.]+[kM]B, free 0B\)", message)
    assert not list((fe.config.root / "content" / "ingest").iterdir())
    assert not [p for p in fe.config.root.rglob("*") if ".tmp" in p.name or p.name.endswith(".part")]

    # What frees space works, and so do small writes the reserve has room for.
    ok(fe.cli("pause", "sleeper"))  # a small write: the reserve has room for it
    assert json.loads(ok(fe.cli("ps", "--filter", "name=sleeper", "--format", "json")))["State"] == "paused"
    ok(fe.cli("unpause", "sleeper"))
    ok(fe.cli("kill", "sleeper"))
    assert ok(fe.cli("wait", "sleeper")).strip() == "137"
    ok(fe.cli("stop", "-t", "1", "talker"))  # its restart policy does not bring it back
    talker = engine.inspect("talker")
    assert (talker["State"]["Status"], talker["RestartCount"]) == ("exited", 0)
    assert talker["State"]["ExitCode"] in (137, 143) and engine.get("talker").state["StoppedByUser"]
    assert "Exited (137)" in ok(fe.cli("ps", "-a", "--filter", "name=sleeper"))
    ok(fe.cli("rm", "-f", "talker", "sleeper", "done"))
    assert engine.ids() == [] and leftovers(fe) == []
    fe.disk.fill()  # what the containers held is taken too
    ok(fe.cli("rmi", "test/busybox"))
    assert ok(fe.cli("images", "-q")) == ""
    ok(fe.cli("image", "prune", "-a"))
    fe.disk.fill()
    assert "scratch" in ok(fe.cli("volume", "prune", "-f"))
    assert "faultnet" in ok(fe.cli("network", "prune", "-f"))


def exited_with_no_room_to_say_it(fe):
    """A container that exits 7 on a full disk with no reserve left: its monitor holds the code."""
    engine = fe.engine
    c, _ = engine.run("test/busybox", ["sh", "-c", "while [ ! -e /out/go ]; do sleep 0.02; done; exit 7"],
                      name="quitter", volumes=[f"{fe.outside}:/out"])
    fe.disk.fill()
    reserve = fe.config.root / "space.reserve"
    reserve.unlink()  # no reserve to take from: only waiting helps
    fe.disk.fill()
    assert not reserve.exists()
    (fe.outside / "go").touch()
    pid = engine.get("quitter").state["Pid"]
    wait_for(lambda: process_start_time(pid) is None)  # the container is done
    assert monitor_alive(engine, "quitter")  # holding the exit code
    return c


def test_the_exit_code_waits_in_memory_until_the_disk_has_room(full_engine):
    fe, engine = full_engine, full_engine.engine
    exited_with_no_room_to_say_it(fe)
    # Unwritten, but not unknown: the monitor tells whoever asks.
    assert "Exited (7)" in ok(fe.cli("ps", "-a"))
    assert ok(fe.cli("wait", "quitter")).strip() == "7"
    assert json.loads(ok(fe.cli("inspect", "quitter")))[0]["State"]["Status"] == "exited"
    ok(fe.cli("stop", "quitter", timeout=15))
    fe.disk.free()
    wait_for(lambda: not monitor_alive(engine, "quitter"))
    state = engine.inspect("quitter")["State"]
    assert (state["Status"], state["ExitCode"], state["Error"]) == ("exited", 7, "")
    assert "Exited (7)" in ok(fe.cli("ps", "-a"))


def test_rm_does_not_wait_for_an_exit_code_it_deletes(full_engine):
    fe = full_engine
    exited_with_no_room_to_say_it(fe)
    ok(fe.cli("rm", "-f", "quitter", timeout=15))
    assert fe.engine.ids() == [] and leftovers(fe) == []


FILLER = ("while [ ! -e /out/fill ]; do sleep 0.01; done; "
          "dd if=/dev/zero of=/fill bs=64k 2>/dev/null; i=0; p=$(printf '%1000s' x); "
          "while [ ! -e /out/go ]; do echo line $i $p; echo $i > /out/n; i=$((i+1)); sleep 0.01; done; "
          "rm /fill; while true; do echo line $i; i=$((i+1)); sleep 0.01; done")


def test_a_container_that_fills_its_own_rootfs(full_engine):
    fe, engine = full_engine, full_engine.engine
    c, _ = engine.run("test/busybox", ["sh", "-c", FILLER], name="hog", volumes=[f"{fe.outside}:/out"])
    # Once the engine has made its reserve (a start does, and its monitor once it runs).
    reserve = fe.config.root / "space.reserve"
    wait_for(lambda: reserve.stat().st_size == RESERVE_SIZE and not list(fe.config.root.glob("*.tmp*")))
    (fe.outside / "fill").touch()
    wait_for(lambda: counter(fe) >= 0)
    assert fe.disk.available() == 0
    start = counter(fe)
    wait_for(lambda: counter(fe) > start + 200, timeout=20)  # it never blocks on its output
    assert monitor_alive(engine, "hog")
    (fe.outside / "go").touch()  # it frees its disk
    wait_for(lambda: any(r.get("dropped") for r in records(engine, "hog")), timeout=10)
    at = index_of_dropped(engine, "hog")
    wait_for(lambda: len(records(engine, "hog")) > at + 3)
    logged = records(engine, "hog")
    before = number(logged[at - 1]) if at else -1  # the disk may have been full from line 0
    assert logged[at]["dropped"]["lines"] == number(logged[at + 1]) - before - 1
    ok(fe.cli("stop", "-t", "1", "hog"))
    assert engine.inspect("hog")["State"]["ExitCode"] in (137, 143)
    ok(fe.cli("rm", "hog"))
    assert leftovers(fe) == []


def test_a_pull_the_disk_fills_under_keeps_nothing(full_engine, open_registry):
    fe = full_engine
    built = build_image([[file("/payload", os.urandom(300_000))]])
    upload(RegistryClient(open_registry.host), "fault/tight", built, "1")
    blobs = sorted(p.name for p in (fe.config.root / "content" / "blobs" / "sha256").iterdir())
    # Room for the blobs' bytes, so it starts; not for their last pages and the bookkeeping.
    fe.disk.leave(sum(len(data) for data in built.blobs.values()))
    message = one_line_error(fe.cli("pull", f"{open_registry.host}/fault/tight:1"))
    assert re.fullmatch(rf"Error: no space left on {re.escape(str(fe.config.root))} "
                        r"\(needed ~30\d\.?\d*kB, free [\d.]+k?B\)", message), message
    assert sorted(p.name for p in (fe.config.root / "content" / "blobs" / "sha256").iterdir()) == blobs
    assert not list((fe.config.root / "content" / "ingest").iterdir())
    assert "fault/tight" not in ok(fe.cli("images"))
    fe.disk.free()
    ok(fe.cli("pull", f"{open_registry.host}/fault/tight:1"))
