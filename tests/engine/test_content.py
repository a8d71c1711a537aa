"""The blob store: verified, atomic, and safe with several processes at once."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from engine.config import EngineConfig
from engine.errors import InvalidArgument, NotFound
from engine.images.content import ContentStore, DigestMismatch, sha256_digest


@pytest.fixture
def config(tmp_path):
    return EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run")


@pytest.fixture
def store(config):
    return ContentStore(config)


def blob_files(store):
    return sorted(p.name for p in store.blob_dir.iterdir())


def test_layout_and_round_trip(store):
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    digest = store.put(b"hello")
    assert digest == sha256_digest(b"hello")
    assert store.has(digest) and store.read(digest) == b"hello" and store.size(digest) == 5
    assert store.path(digest) == store.root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    with store.open(digest) as f:
        assert f.read() == b"hello"
    assert list(store.digests()) == [digest]
    assert store.put(b"hello", digest) == digest  # idempotent
    assert store.verify(digest)
    store.delete(digest)
    assert not store.has(digest) and list(store.digests()) == []
    store.delete(digest)  # deleting twice is fine


def test_missing_blob_is_not_found(store):
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFound, match=missing):
        store.read(missing)
    with pytest.raises(NotFound):
        store.size(missing)
    with pytest.raises(InvalidArgument):
        store.has("sha256:nothex")


def test_digest_mismatch_stores_nothing(store):
    wrong = sha256_digest(b"something else")
    with pytest.raises(DigestMismatch) as info:
        store.put(b"hello", wrong)
    assert wrong in str(info.value) and sha256_digest(b"hello") in str(info.value)
    with pytest.raises(DigestMismatch) as info:
        with store.ingest(wrong) as w:
            w.write(b"hel")
            w.write(b"lo")
            w.commit()
    assert wrong in str(info.value) and sha256_digest(b"hello") in str(info.value)
    assert blob_files(store) == [] and list(store.ingest_dir.iterdir()) == []


def test_size_checks(store):
    digest = sha256_digest(b"hello")
    with pytest.raises(DigestMismatch, match="larger than its announced size of 3"):
        with store.ingest(digest, 3) as w:
            w.write(b"hello")
    with pytest.raises(DigestMismatch, match="should be 9 bytes but 5"):
        with store.ingest(digest, 9) as w:
            w.write(b"hello")
            w.commit()
    assert blob_files(store) == [] and list(store.ingest_dir.iterdir()) == []


def test_streaming_writer_progress_and_already_present(store):
    data = os.urandom(3 << 20)
    digest = sha256_digest(data)
    with store.ingest(digest, len(data)) as w:
        for i in range(0, len(data), 1 << 20):
            w.write(data[i : i + (1 << 20)])
        assert w.bytes_written == len(data) and w.digest_so_far == digest
        assert w.commit() == digest
    assert store.read(digest) == data
    with store.ingest(digest, len(data)) as w:
        assert w.commit() == digest  # nothing to send: it is already there
    assert list(store.ingest_dir.iterdir()) == []


def test_exception_inside_ingest_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        with store.ingest() as w:
            w.write(b"partial")
            raise RuntimeError("connection lost")
    with store.ingest() as w:
        w.write(b"never committed")
    assert blob_files(store) == [] and list(store.ingest_dir.iterdir()) == []


def test_killed_writer_leaves_only_a_temp_file_that_gc_removes(config, store):
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from engine.config import EngineConfig
        from engine.images.content import ContentStore
        store = ContentStore(EngineConfig(Path({str(config.root)!r}), Path({str(config.run_root)!r})))
        w = store.ingest()
        w.write(b"x" * 100000)
        print("written", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=os.getcwd())
    try:
        assert proc.stdout.readline().strip() == b"written"
        assert len(list(store.ingest_dir.iterdir())) == 1
        # live writer: gc must wait for it (it holds the lease), so try the unlocked cleaner
        assert store._clean_ingest() == 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert blob_files(store) == []
    assert store.clean_ingest() == 100000
    assert list(store.ingest_dir.iterdir()) == []


def _hammer(root, run_root, data, rounds, remove):
    store = ContentStore(EngineConfig(root, run_root))
    digest = sha256_digest(data)
    for _ in range(rounds):
        if remove:
            with store.gc_lock():
                store.delete(digest)
        else:
            assert store.put(data, digest) == digest
            with store.lease():
                # under a lease nobody may remove it, and it is always complete
                if store.has(digest):
                    assert store.read(digest) == data


def test_two_processes_writing_and_removing_the_same_blob(config, store):
    data = os.urandom(256 << 10)
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_hammer, args=(config.root, config.run_root, data, 40, remove))
        for remove in (False, False, True)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    digest = sha256_digest(data)
    if store.has(digest):
        assert store.verify(digest)
    assert list(store.ingest_dir.iterdir()) == []


def _hold_lease(root, run_root, ready, release):
    store = ContentStore(EngineConfig(root, run_root))
    with store.lease():
        ready.set()
        release.wait(30)


def test_gc_lock_waits_for_a_lease_in_another_process(config, store):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lease, args=(config.root, config.run_root, ready, release))
    proc.start()
    try:
        assert ready.wait(10)
        started = time.monotonic()
        ctx_timer = threading.Timer(0.3, release.set)
        ctx_timer.start()
        with store.gc_lock():
            waited = time.monotonic() - started
        assert waited >= 0.25
    finally:
        release.set()
        proc.join(10)


def test_locks_nest_within_a_thread(store):
    with store.gc_lock():
        store.put(b"inside gc")  # writer's shared lock nests inside the exclusive one
        with store.lease():
            pass
    with store.lease():
        store.put(b"inside lease")
        with pytest.raises(Exception, match="held shared"):
            with store.gc_lock():
                pass
