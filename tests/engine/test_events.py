"""The events log: what containers went through, followed live, sync and async."""

from __future__ import annotations

import asyncio
import threading
import time

from engine import events
from tests.support.containers import wait_for


def actions(eng, container_id):
    return [(e["Action"], e["Actor"]["Attributes"]) for e in events.read(eng.config)
            if e["Actor"]["ID"] == container_id]


def test_lifecycle_events_in_order(engine):
    c = engine.create("test/busybox", ["sh", "-c", 'trap "exit 3" TERM; while true; do sleep 0.05; done'],
                      name="ev")
    engine.start(c.id)
    engine.pause(c.id)
    engine.unpause(c.id)
    engine.rename(c.id, "ev2")
    engine.stop(c.id, timeout=5)
    engine.remove(c.id)
    seen = actions(engine, c.id)
    names = [a for a, _ in seen]
    assert names == ["create", "start", "pause", "unpause", "rename", "kill", "die", "stop", "destroy"]
    attributes = dict(seen)
    assert attributes["die"]["exitCode"] == "3"
    assert attributes["kill"]["signal"] == "15"
    assert attributes["rename"]["oldName"] == "/ev" and attributes["destroy"]["name"] == "ev2"
    record = events.read(engine.config)[0]
    assert set(record) == {"Type", "Action", "Actor", "time", "timeNano"} and record["Type"] == "container"


def test_oom_and_since_until(engine):
    start = time.time()
    c, code = engine.run("test/busybox", ["tail", "/dev/zero"], memory="16m", detach=False)
    assert code == 137
    assert [a for a, _ in actions(engine, c.id)][-2:] == ["oom", "die"]
    assert events.read(engine.config, since=time.time() + 1) == []
    assert len(events.read(engine.config, since=start, until=time.time())) == len(actions(engine, c.id))


def test_follow_sync_sees_new_events(engine):
    got = []
    done = threading.Event()

    def reader():
        for event in events.follow(engine.config, stop=done.is_set):
            got.append(event["Action"])

    def reader_is_live():  # it follows from the end: a probe it reads says it is there
        events.emit(engine.config, "image", "probe", "sha256:probe", {})
        return "probe" in got

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        wait_for(reader_is_live)
        c, _ = engine.run("test/busybox", ["true"], detach=False)
        wait_for(lambda: "die" in got)
    finally:
        done.set()
        thread.join(5)
    assert [a for a in got if a != "probe"][:3] == ["create", "start", "die"]


async def test_follow_async_and_exec_events(engine):
    c, _ = engine.run("test/busybox", ["sleep", "100"])
    from engine.containers import exec as ex

    since = time.time()  # the follower reads from here, however late it starts

    async def collect():
        out = []
        exec_actions = ["exec_create", "exec_start", "exec_die"]
        async for event in events.follow_async(engine.config, since=since,
                                               filters={"container": [c.id], "event": exec_actions}):
            out.append(event["Action"])
            if event["Action"] == "exec_die":
                return out

    task = asyncio.create_task(collect())
    await asyncio.to_thread(ex.exec_run, engine, c.id, ["true"])
    assert await asyncio.wait_for(task, 5) == ["exec_create", "exec_start", "exec_die"]


def test_other_modules_can_emit(engine):
    events.emit(engine.config, "image", "pull", "sha256:abc", {"name": "busybox:latest"})
    record = events.read(engine.config, filters={"type": ["image"]})[-1]
    assert (record["Action"], record["Actor"]["Attributes"]) == ("pull", {"name": "busybox:latest"})
