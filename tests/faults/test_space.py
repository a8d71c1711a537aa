"""Space is given back: the garbage collector (engine/system/gc.py) after removals and at boot,
``system df`` and ``system prune`` as Docker's, a bounded events log read backwards; and
``system check`` notices what a fault left."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time

import pytest

from engine import events
from engine.images.store import ImageStore
from engine.system import gc
from tests.support import imagebuilder as ib
from tests.support.faults_restore import check_clean, cli, owned_engine, simulate_reboot

PAYLOAD = os.urandom(3 << 20)  # incompressible: the extra layer is ~3 MB unpacked and packed


@pytest.fixture
def engine():
    yield from owned_engine()


def unpacked_layers(config) -> list[str]:
    return sorted(p.name for p in (config.root / "layers").iterdir() if p.is_dir())


def add_payload_image(eng, ref: str = "test/payload:1"):
    built = ib.build_image([ib.busybox_layer(), [ib.file("/payload", PAYLOAD)]], cmd=["sh"])
    return built.register(eng.images, ref)


def df_rows(config) -> dict[str, list[str]]:
    out = cli(config, "system", "df")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    rows = {}
    for line in lines[1:]:
        kind = "Local Volumes" if line.startswith("Local Volumes") else \
            "Build Cache" if line.startswith("Build Cache") else line.split()[0]
        rows[kind] = line[len(kind):].split()
    return rows


def test_removing_every_image_gives_its_unpacked_layers_back(engine):
    eng = engine
    add_payload_image(eng)
    c = eng.create("test/payload:1", ["true"], name="user")
    assert len(unpacked_layers(eng.config)) == 2
    eng.remove(c.id)
    assert cli(eng.config, "rmi", "test/payload:1").returncode == 0
    assert len(unpacked_layers(eng.config)) == 1  # busybox's, which test/busybox still uses
    assert cli(eng.config, "rmi", "test/busybox:latest").returncode == 0
    out = cli(eng.config, "image", "prune", "-a", "-f")
    assert out.returncode == 0, out.stderr
    assert unpacked_layers(eng.config) == []
    assert ImageStore(eng.config).list(all=True) == []
    assert list((eng.config.root / "content" / "blobs" / "sha256").iterdir()) == []
    check_clean(eng.config)


def test_a_layer_an_image_lost_while_a_container_used_it_goes_with_the_container(engine):
    eng = engine
    add_payload_image(eng)
    c = eng.create("test/payload:1", ["true"], name="user")
    eng.images.remove("test/payload:1", force=True)  # untagged, kept for the container
    assert len(unpacked_layers(eng.config)) == 2
    assert cli(eng.config, "image", "prune", "-f").returncode == 0
    assert len(unpacked_layers(eng.config)) == 2  # dangling but still used
    eng.remove(c.id)
    assert cli(eng.config, "image", "prune", "-f").returncode == 0  # it is dangling now
    assert len(unpacked_layers(eng.config)) == 1  # busybox's
    check_clean(eng.config)


def test_leftovers_of_interrupted_removals_and_writes_are_collected(engine):
    eng = engine
    config = eng.config
    # What a `rm` killed half-way leaves (engine.snapshots._destroy, Containers.remove).
    trash = tempfile.mkdtemp(prefix=".trash-deadbeef-", dir=config.root / "snapshots")
    os.makedirs(os.path.join(trash, "snapshot", "upper"))
    with open(os.path.join(trash, "snapshot", "upper", "big"), "wb") as f:
        f.write(PAYLOAD)
    removing = config.root / "containers" / (".removing-" + "ab" * 32)
    removing.mkdir()
    unpack_old = config.root / "layers" / ".tmp-0123456789abcdef-x"  # an unpack killed long ago
    unpack_now = config.root / "layers" / ".tmp-fedcba9876543210-y"  # one at work
    for path in (unpack_old, unpack_now):
        (path / "etc").mkdir(parents=True)
    long_ago = time.time() - 2 * gc.CREATE_GRACE
    os.utime(unpack_old, (long_ago, long_ago))
    ingest = config.root / "content" / "ingest"
    dead = ingest / "blob-dead.part"
    dead.write_bytes(PAYLOAD)
    old = time.time() - 2 * gc.INGEST_GRACE
    os.utime(dead, (old, old))
    young = ingest / "blob-young.part"  # a writer that has not locked it yet
    young.write_bytes(b"x")
    live = ingest / "blob-live.part"
    live.write_bytes(b"y")
    os.utime(live, (old, old))
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a writer still at work
    try:
        problems = cli(config, "system", "check")
        assert problems.returncode == 1 and ".trash-deadbeef-" in problems.stdout
        c = eng.create("test/busybox", ["true"])
        eng.remove(c.id)  # any removal collects
    finally:
        os.close(fd)
    assert not os.path.exists(trash) and not removing.exists()
    assert not dead.exists() and young.exists() and live.exists()
    assert not unpack_old.exists() and unpack_now.exists()
    shutil.rmtree(unpack_now)  # as its unpack would, once done
    check_clean(config)


def test_exec_records_do_not_pile_up(engine):
    from engine.containers import exec as ex

    eng = engine
    c, _ = eng.run("test/busybox", ["sleep", "300"])
    for _ in range(3):
        assert ex.exec_run(eng, c.id, ["true"]).exit_code == 0
    execs = c.dir / "execs"
    running = execs / ("ab" * 16 + ".state.json")
    running.write_text('{"Running": true, "Pid": 1, "ExitCode": 0}')  # a TTY exec still at work
    old = time.time() - 2 * gc.EXEC_GRACE
    for path in execs.iterdir():
        os.utime(path, (old, old))
    ex.exec_run(eng, c.id, ["true"])  # a fresh one
    gc.collect(eng.config)
    assert sorted(p.name.endswith(".state.json") for p in execs.iterdir()) == [False, True]
    assert running.exists()
    check_clean(eng.config)


def test_what_a_killed_create_left_is_collected(engine):
    eng = engine
    eng.networks.create("appnet")
    c = eng.create("test/busybox", ["true"], name="half", network="appnet")
    # As if the create had been killed before writing its config (written last).
    (c.dir / "config.json").unlink()
    old = time.time() - 2 * gc.CREATE_GRACE
    for path in (c.dir, eng.config.root / "snapshots" / c.id):
        os.utime(path, (old, old))
    found = cli(eng.config, "system", "check").stdout
    assert "a create killed half-way" in found
    other = eng.create("test/busybox", ["true"])
    eng.remove(other.id)  # any removal collects
    assert not c.dir.exists() and not (eng.config.root / "snapshots" / c.id).exists()
    assert eng.networks.endpoint(c.id) is None
    assert not (eng.config.root / "containers" / "names" / "half").is_symlink()
    eng.create("test/busybox", ["true"], name="half")  # the name is free
    check_clean(eng.config)


def test_system_df_and_prune_as_docker(engine):
    eng = engine
    add_payload_image(eng)
    eng.run("test/busybox", ["sleep", "300"], name="runs")
    stopped, _ = eng.run("test/payload:1", ["sh", "-c", "head -c 100000 /payload > /copy"], name="stopped")
    eng.wait("stopped")
    eng.volumes.create("unused")
    with open(eng.volumes.path("unused") / "data", "wb") as f:
        f.write(b"v" * 50000)
    rows = df_rows(eng.config)
    assert rows["Images"][:2] == ["2", "2"]
    assert rows["Containers"][:2] == ["2", "1"]
    assert rows["Containers"][3].startswith("100kB")  # what the stopped one wrote
    assert rows["Local Volumes"][:2] == ["1", "0"] and rows["Local Volumes"][2].endswith("kB")
    assert rows["Build Cache"][:2] == ["0", "0"]

    refused = cli(eng.config, "system", "prune", "-a", "--volumes", input="n\n")
    assert "WARNING! This will remove:" in refused.stdout and eng.inspect("stopped")
    out = cli(eng.config, "system", "prune", "-a", "--volumes", "-f")
    assert out.returncode == 0, out.stderr
    assert "Deleted Containers:\n" + stopped.id in out.stdout
    assert "Deleted Volumes:\nunused" in out.stdout and "Deleted Images:" in out.stdout
    assert "Total reclaimed space: " in out.stdout and not out.stdout.rstrip().endswith(" 0B")
    assert [row["Names"] for row in eng.list(all=True)] == [["/runs"]]
    assert [i.repo_tags for i in ImageStore(eng.config).list()] == [["test/busybox:latest"]]
    assert len(unpacked_layers(eng.config)) == 1
    rows = df_rows(eng.config)
    assert rows["Images"][:2] == ["1", "1"] and rows["Images"][3] == "0B"
    assert rows["Containers"][:2] == ["1", "1"]
    assert rows["Local Volumes"][0] == "0"
    check_clean(eng.config)


def test_the_events_log_is_bounded_rotates_atomically_and_is_read_backwards(engine, monkeypatch):
    config = engine.config
    monkeypatch.setenv("BERTH_ENGINE_EVENTS_MAX_BYTES", "20000")
    reader = events.follow(config, since=time.time() - 60)
    for i in range(1000):  # ~150 kB of events
        events.emit(config, "image", "tag", f"sha256:{i:064x}", {"n": i})
    files = sorted(p.name for p in (config.root / "events").glob("*.jsonl"))
    assert files == ["events.1.jsonl", "events.jsonl"]
    assert events.size(config) <= 2 * 20000 + 1000
    kept = [int(e["Actor"]["Attributes"]["n"]) for e in events.read(config)]
    assert kept == list(range(kept[0], 1000)) and kept[0] > 800  # the newest, in order, no gap
    # A reader from a minute ago gets what is kept, in order, up to the newest.
    got = []
    for event in reader:
        got.append(int(event["Actor"]["Attributes"]["n"]))
        if got[-1] == 999:
            break
    assert got == sorted(got) and got[-1] == 999
    # Reading from a moment on starts near the end, not at the beginning of the file.
    nanos = events.read(config)[-10]["timeNano"]
    stamp = f"{nanos // 10**9}.{nanos % 10**9:09d}"  # exact: a float of seconds is not
    assert [int(e["Actor"]["Attributes"]["n"]) for e in events.read(config, since=stamp)] == list(range(990, 1000))
    assert events.last(config, 3)[-1]["Actor"]["Attributes"]["n"] == "999"
    check_clean(config)


def test_a_follower_misses_nothing_across_a_rotation(engine, monkeypatch):
    config = engine.config
    monkeypatch.setenv("BERTH_ENGINE_EVENTS_MAX_BYTES", "20000")
    reader = events._Reader(config, 0, None, None)
    reader.seek_end()
    got = []
    for i in range(400):
        events.emit(config, "image", "tag", f"sha256:{i:064x}", {"n": i})
        if i % 50 == 0:  # the follower polls now and then; rotations happen in between
            got += [int(e["Actor"]["Attributes"]["n"]) for e in reader.poll()]
    got += [int(e["Actor"]["Attributes"]["n"]) for e in reader.poll()]
    assert got == list(range(400))


def test_system_check_lists_what_a_crash_left(engine):
    eng = engine
    eng.networks.create("appnet")
    eng.run("test/busybox", ["sleep", "300"], name="web", network="appnet", publish=["8080"])
    image = ImageStore(eng.config).get("test/busybox")
    simulate_reboot(eng)
    out = cli(eng.config, "system", "check")
    assert out.returncode == 1
    assert "container web: recorded as running but neither its monitor nor its process runs" in out.stdout
    assert "container web: stopped but its network namespace" in out.stdout
    assert out.stdout.rstrip().endswith("found.")
    # A damaged blob is named.
    blob = eng.config.root / "content" / "blobs" / "sha256" / image.layers[0].digest[7:]
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    out = cli(eng.config, "system", "check")
    assert f"blob {image.layers[0].digest} does not match its digest" in out.stdout
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    assert cli(eng.config, "boot").returncode == 0
    check_clean(eng.config)
