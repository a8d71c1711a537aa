"""A monitor killed with kill -9: the container runs on unsupervised, its published port
keeps serving, ps and inspect say so, an event tells it, and restart supervises it again."""

from __future__ import annotations

import pytest

from engine.net.networks import Networks
from tests.support.containers import wait_for
from tests.support.faults_restore import (
    HTTPD,
    check_clean,
    cli,
    event_actions,
    fetch,
    fetch_once,
    json_lines,
    kill_monitor,
    owned_engine,
)


@pytest.fixture
def engine():
    yield from owned_engine()


def test_a_killed_monitor_leaves_the_port_serving_and_says_so(engine):
    eng = engine
    nets = Networks(eng.config)
    c, _ = eng.run("test/busybox", HTTPD, publish=["8080"], name="web")
    port = nets.host_port(c.id, 8080)
    assert "hello from" in fetch(port)

    kill_monitor(eng, "web")
    # The keeper noticed (its event) and went on relaying for the container.
    wait_for(lambda: "unsupervised" in event_actions(eng.config, c.id))
    answers = [fetch_once(port) for _ in range(30)]
    assert all(a and "hello from" in a for a in answers), answers

    rows = json_lines(cli(eng.config, "ps", "--format", "json").stdout)
    assert [r["Status"] for r in rows if r["Id"] == c.id][0].endswith("(unsupervised)")
    table = cli(eng.config, "ps").stdout.splitlines()
    assert "(unsupervised)  web" in table[1] or "(unsupervised) web" in table[1], table
    state = eng.inspect("web")["State"]
    assert state["Running"] and state["Unsupervised"] and "monitor died" in state["Error"]
    assert event_actions(eng.config, c.id).count("unsupervised") == 1

    eng.restart("web", timeout=1)
    state = eng.inspect("web")["State"]
    assert state["Running"] and not state["Unsupervised"]
    assert eng.monitor_alive(eng.get("web"))
    port = nets.host_port(c.id, 8080)
    assert "hello from" in fetch(port)
    assert "(unsupervised)" not in eng.list()[0]["Status"]
    check_clean(eng.config)


def test_an_unsupervised_container_without_ports_is_reported_once(engine):
    eng = engine
    c, _ = eng.run("test/busybox", ["sleep", "300"], name="quiet")
    kill_monitor(eng, "quiet")
    assert eng.list()[0]["Status"].endswith("(unsupervised)")
    assert eng.list()[0]["Unsupervised"]
    eng.inspect("quiet")
    assert event_actions(eng.config, c.id).count("unsupervised") == 1
    eng.stop("quiet", timeout=1)  # no monitor to tell: the engine records the end itself
    assert eng.inspect("quiet")["State"]["Status"] == "exited"
    check_clean(eng.config)


def test_stopping_an_unsupervised_container_releases_its_port(engine):
    eng = engine
    nets = Networks(eng.config)
    c, _ = eng.run("test/busybox", HTTPD, publish=["8080"], name="web")
    port = nets.host_port(c.id, 8080)
    fetch(port)
    kill_monitor(eng, "web")
    wait_for(lambda: "unsupervised" in event_actions(eng.config, c.id))
    eng.stop("web", timeout=1)
    assert nets.host_port(c.id, 8080) is None
    assert fetch_once(port) is None
    check_clean(eng.config)
