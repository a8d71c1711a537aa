"""Containers from a real busybox image on real runc: lifecycle, Docker's config semantics,
limits, and bad input that leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from engine.containers.manager import Containers
from engine.errors import Conflict, InvalidArgument, NotFound, RuntimeFailure
from engine.images.store import ImageStore
from engine.runtime.runc import cgroup_dir
from tests.support.containers import all_leftovers, cleanup, leftovers, make_engine, wait_for

LOOP = ["sh", "-c", 'trap "exit 7" TERM; while true; do sleep 0.05; done']


def output(eng: Containers, ref: str) -> str:
    return "".join(r["log"] for r in eng.logs(ref))


def run_out(eng: Containers, cmd, **options) -> tuple[int, str]:
    container, code = eng.run("test/busybox", cmd, detach=False, **options)
    return code, output(eng, container.id)


def test_lifecycle_create_start_stop_remove(engine):
    c = engine.create("test/busybox", LOOP, name="web")
    assert engine.inspect("web")["State"]["Status"] == "created"
    assert engine.list() == []
    assert [row["Names"] for row in engine.list(all=True)] == [["/web"]]

    engine.start("web")
    info = engine.inspect(c.id[:8])
    assert info["State"]["Status"] == "running" and info["State"]["Running"] is True
    assert info["State"]["Pid"] > 0
    assert [row["Id"] for row in engine.list()] == [c.id]
    assert engine.list()[0]["Status"].startswith("Up")

    engine.pause("web")
    assert engine.inspect("web")["State"]["Paused"] is True
    assert "Paused" in engine.list()[0]["Status"]
    engine.unpause("web")
    assert engine.inspect("web")["State"]["Status"] == "running"

    with pytest.raises(Conflict):
        engine.remove("web")
    started = time.monotonic()
    engine.stop("web", timeout=5)
    assert time.monotonic() - started < 4  # the trap answered SIGTERM; no SIGKILL needed
    state = engine.inspect("web")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 7
    assert state["FinishedAt"] > state["StartedAt"]

    engine.start("web")  # a stopped container starts again
    assert engine.inspect("web")["State"]["Status"] == "running"
    engine.remove("web", force=True)
    with pytest.raises(NotFound):
        engine.inspect("web")
    assert leftovers(engine, c.id) == []
    assert all_leftovers(engine) == []


def test_exit_codes_and_wait(engine):
    assert run_out(engine, ["sh", "-c", "exit 3"])[0] == 3
    assert run_out(engine, ["true"])[0] == 0
    c = engine.create("test/busybox", ["sleep", "100"])
    engine.start(c.id)
    engine.kill(c.id, "SIGKILL")
    assert engine.wait(c.id) == 137
    assert engine.inspect(c.id)["State"]["ExitCode"] == 137
    c = engine.create("test/busybox", LOOP)
    engine.start(c.id)
    engine.kill(c.id, "15")  # numbers work too; the trap exits 7
    assert engine.wait(c.id) == 7


def test_stop_kills_after_the_timeout_when_the_signal_is_ignored(engine):
    c = engine.create("test/busybox", ["sleep", "100"])  # pid 1 ignores an unhandled SIGTERM
    engine.start(c.id)
    started = time.monotonic()
    engine.stop(c.id, timeout=1)
    assert 0.9 < time.monotonic() - started < 6
    assert engine.inspect(c.id)["State"]["ExitCode"] == 137


def test_image_stop_signal_is_used():
    eng, _ = make_engine(stop_signal="SIGUSR1")
    try:
        c = eng.create("test/busybox", ["sh", "-c", 'trap "exit 10" USR1; echo ready; while true; do sleep 0.05; done'])
        eng.start(c.id)
        wait_for(lambda: output(eng, c.id) == "ready\n")  # the trap is set (not still runc's init)
        eng.stop(c.id, timeout=5)
        assert eng.inspect(c.id)["State"]["ExitCode"] == 10
        assert eng.inspect(c.id)["Config"]["StopSignal"] == "SIGUSR1"
    finally:
        cleanup(eng)


def test_entrypoint_cmd_env_and_workdir_follow_docker():
    eng, _ = make_engine(entrypoint=["echo", "ep"], cmd=["default"], env=["PATH=/bin:/usr/bin", "A=image"],
                         workdir="/tmp")
    try:
        assert run_out(eng, None)[1] == "ep default\n"
        assert run_out(eng, ["given"])[1] == "ep given\n"  # args replace Cmd only
        code, out = run_out(eng, ["-c", "echo $A $B $PATH $HOSTNAME; pwd"], entrypoint="sh",
                            env=["B=user"], hostname="box")
        assert out == "image user /bin:/usr/bin box\n/tmp\n"
        code, out = run_out(eng, ["-c", "echo $A; pwd"], entrypoint=["sh"], env=["A=over"], workdir="/etc")
        assert out == "over\n/etc\n"
        # --entrypoint clears the image's Cmd
        c = eng.create("test/busybox", None, entrypoint="true")
        assert eng.inspect(c.id)["Path"] == "true" and eng.inspect(c.id)["Args"] == []
    finally:
        cleanup(eng)


def test_default_environment_and_tty_term(engine):
    out = run_out(engine, ["sh", "-c", "echo $PATH; echo $HOME; echo ${TERM:-none}"])[1]
    assert out.splitlines() == ["/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "/root", "none"]
    c = engine.create("test/busybox", ["sh", "-c", "echo $TERM; test -t 1 && echo tty"], tty=True)
    engine.start(c.id)
    engine.wait(c.id)
    assert output(engine, c.id).replace("\r", "").splitlines() == ["xterm", "tty"]


def test_user_is_resolved_from_the_image(engine):
    assert run_out(engine, ["id"], user="app")[1] == "uid=1000(app) gid=1000(app) groups=10(wheel)\n"
    assert run_out(engine, ["id"], user="1000:10")[1].startswith("uid=1000(app) gid=10(wheel)")
    assert run_out(engine, ["sh", "-c", "id -u; echo $HOME"], user="app")[1] == "1000\n/home/app\n"
    assert run_out(engine, ["id", "-u"], user="4242")[1] == "4242\n"
    with pytest.raises(InvalidArgument, match="unable to find user nosuch"):
        engine.create("test/busybox", ["true"], user="nosuch", name="baduser")
    assert all_leftovers(engine) == [name for name in all_leftovers(engine) if "baduser" not in name]
    assert not any("baduser" in x for x in all_leftovers(engine))


def test_hostname_labels_and_inspect_shape(engine):
    c = engine.create("test/busybox", ["hostname"], labels={"team": "blue"}, hostname="h1",
                      memory="64m", cpus="0.5", pids_limit=50, restart="on-failure:3")
    info = engine.inspect(c.id)
    for key in ("Id", "Name", "Created", "Path", "Args", "State", "Image", "Config", "HostConfig",
                "Mounts", "RestartCount", "LogPath"):
        assert key in info
    assert info["Image"].startswith("sha256:")
    assert info["Config"]["Labels"] == {"team": "blue"}
    assert info["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert info["HostConfig"]["NanoCpus"] == 500_000_000
    assert info["HostConfig"]["PidsLimit"] == 50
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    engine.start(c.id)
    engine.wait(c.id)
    assert output(engine, c.id) == "h1\n"
    assert [r["Id"] for r in engine.list(all=True, filters={"label": ["team=blue"]})] == [c.id]
    assert engine.list(all=True, filters={"label": ["team=red"]}) == []
    assert [r["Id"] for r in engine.list(all=True, filters={"ancestor": ["test/busybox"]})] == [c.id]
    assert [r["Id"] for r in engine.list(all=True, filters={"status": ["exited"]})] == [c.id]


def test_limits_are_applied_in_the_cgroup(engine):
    c = engine.create("test/busybox", ["sleep", "100"], memory="64m", cpus="0.5", pids_limit=20)
    engine.start(c.id)
    assert int((cgroup_dir("memory", c.id) / "memory.limit_in_bytes").read_text()) == 64 * 1024 * 1024
    assert int((cgroup_dir("cpu", c.id) / "cpu.cfs_quota_us").read_text()) == 50000
    assert int((cgroup_dir("cpu", c.id) / "cpu.cfs_period_us").read_text()) == 100000
    assert (cgroup_dir("pids", c.id) / "pids.max").read_text().strip() == "20"
    engine.remove(c.id, force=True)
    assert leftovers(engine, c.id) == []


def test_pids_limit_stops_a_fork_bomb(engine):
    code, out = run_out(engine, ["sh", "-c", "for i in $(seq 30); do sleep 5 & done 2>&1; echo done"],
                        pids_limit=10)
    assert "can't fork" in out or "Resource temporarily unavailable" in out


def test_memory_hog_is_oom_killed(engine):
    c = engine.create("test/busybox", ["tail", "/dev/zero"], memory="16m")
    engine.start(c.id)
    assert engine.wait(c.id, timeout=30) == 137
    assert engine.inspect(c.id)["State"]["OOMKilled"] is True


def test_read_only_root_and_default_security(engine):
    out = run_out(engine, ["sh", "-c", "touch /x 2>&1; touch /tmp/x 2>&1; echo ok"], read_only=True)[1]
    assert "Read-only file system" in out and out.endswith("ok\n")
    out = run_out(engine, ["sh", "-c", "grep CapEff /proc/self/status; cat /proc/self/mountinfo; ls /dev"])[1]
    assert "CapEff:\t00000000a80425fb" in out  # Docker's 14 default capabilities
    assert " /proc/sys ro," in out and " /sys ro," in out and " /sys/fs/cgroup/memory ro," in out
    assert " /proc/timer_list " in out or " /proc/sched_debug " in out  # masked with /dev/null
    for dev in ("null", "zero", "pts", "shm", "mqueue", "urandom", "tty"):
        assert dev in out.split()
    out = run_out(engine, ["sh", "-c", "ip -o link 2>/dev/null || cat /proc/net/dev"])[1]
    assert "lo" in out and "eth0" not in out  # a private network namespace with only lo
    out = run_out(engine, ["cat", "/etc/hostname", "/etc/hosts"], hostname="named")[1]
    assert out.startswith("named\n") and "localhost" in out


def test_docker_seccomp_refusals_apply_unless_unconfined(engine):
    probe = ["sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true 2>&1; echo user-ns=$?; "
                         "unshare -n true 2>&1; echo net-ns=$?; echo still-fine"]
    code, out = run_out(engine, probe)
    assert "Seccomp:\t2" in out  # a filter is on
    assert "user-ns=1" in out and "net-ns=1" in out and "Operation not permitted" in out
    assert out.endswith("still-fine\n")  # everything else works
    c, _ = engine.run("test/busybox", probe, detach=False, security_opt=["seccomp=unconfined"])
    out = output(engine, c.id)
    assert "Seccomp:\t0" in out and "user-ns=0" in out  # unconfined: as on the host
    assert engine.inspect(c.id)["HostConfig"]["SecurityOpt"] == ["seccomp=unconfined"]


def test_rename_and_unique_names(engine):
    a = engine.create("test/busybox", ["true"], name="one")
    with pytest.raises(Conflict, match="already in use"):
        engine.create("test/busybox", ["true"], name="one")
    engine.rename("one", "two")
    assert engine.inspect("two")["Id"] == a.id
    with pytest.raises(NotFound):
        engine.get("one")
    b = engine.create("test/busybox", ["true"], name="one")  # the old name is free again
    with pytest.raises(Conflict):
        engine.rename("one", "two")
    assert engine.inspect("one")["Id"] == b.id
    assert len(engine.list(all=True)) == 2


def test_a_name_is_given_once_under_concurrency(engine):
    from concurrent.futures import ThreadPoolExecutor

    def attempt(_):
        try:
            return engine.create("test/busybox", ["true"], name="race").id
        except Conflict:
            return None

    with ThreadPoolExecutor(6) as pool:
        winners = [r for r in pool.map(attempt, range(6)) if r]
    assert len(winners) == 1 and engine.inspect("race")["Id"] == winners[0]
    assert len(engine.list(all=True)) == 1


def test_host_network_and_no_network(engine):
    host = run_out(engine, ["cat", "/proc/net/dev"], network="host")[1]
    private = run_out(engine, ["cat", "/proc/net/dev"], network="none")[1]
    assert "eth0" in host or host.count(":") > 1
    assert [line.split(":")[0].strip() for line in private.splitlines()[2:]] == ["lo"]


def test_bad_input_is_refused_and_leaves_nothing(engine):
    engine.create("test/busybox", ["true"], name="taken")
    before = sorted(all_leftovers(engine))
    with pytest.raises(NotFound, match="No such image"):
        engine.create("nosuch/image:1", ["true"])
    with pytest.raises(Conflict):
        engine.create("test/busybox", ["true"], name="taken")
    with pytest.raises(InvalidArgument, match="invalid size"):
        engine.create("test/busybox", ["true"], memory="12 parsecs")
    with pytest.raises(InvalidArgument):
        engine.create("test/busybox", ["true"], restart="sometimes")
    with pytest.raises(InvalidArgument):
        engine.create("test/busybox", ["true"], cpus="lots")
    with pytest.raises(InvalidArgument):
        engine.create("test/busybox", ["true"], name="bad name!")
    with pytest.raises(InvalidArgument, match="only seccomp=unconfined"):
        engine.create("test/busybox", ["true"], security_opt=["seccomp=/etc/passwd"])
    with pytest.raises(InvalidArgument, match="unknown option"):
        engine.create("test/busybox", ["true"], security_opt=["apparmor=unconfined"])
    assert sorted(all_leftovers(engine)) == before

    with pytest.raises(InvalidArgument, match="invalid signal"):
        engine.kill("taken", "SIGNOPE")
    with pytest.raises(Conflict, match="not running"):
        engine.kill("taken", "KILL")

    # a command that does not exist: a clear error, the container stays "created", nothing runs
    c = engine.create("test/busybox", ["/no/such/binary"])
    with pytest.raises(RuntimeFailure, match="no such file|not found"):
        engine.start(c.id)
    info = engine.inspect(c.id)
    assert info["State"]["Status"] == "created" and info["State"]["ExitCode"] == 127
    assert engine.runtime.list_ids() == []
    engine.remove(c.id)
    assert leftovers(engine, c.id) == []

    engine.remove("taken")
    with pytest.raises(NotFound):
        engine.start("taken")
    assert all_leftovers(engine) == []


def test_image_in_use_cannot_be_removed(engine):
    c = engine.create("test/busybox", ["true"], name="user")
    with pytest.raises(Conflict, match="user"):
        engine.images.remove("test/busybox")
    engine.remove(c.id)
    engine.images.remove("test/busybox")
    with pytest.raises(NotFound):
        engine.create("test/busybox", ["true"])


def test_in_use_check_is_registered_by_a_plain_store(engine):
    engine.create("test/busybox", ["true"])
    fresh = Containers(engine.config)
    fresh.list()
    images = fresh.images  # the store the console would make
    assert isinstance(images, ImageStore)
    with pytest.raises(Conflict):
        images.remove("test/busybox")


def test_cli_run_rm_of_a_container_that_exits_at_once_prints_its_output_every_time(engine):
    """The container may be gone before the CLI attaches: its output then comes from the log."""
    base = [sys.executable, "-m", "engine", "--root", str(engine.config.root),
            "--run-root", str(engine.config.run_root)]
    for _ in range(8):
        out = subprocess.run(base + ["run", "--rm", "test/busybox", "echo", "hi"], capture_output=True,
                             text=True, timeout=60)
        assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    assert engine.list(all=True) == []


def test_cli_lifecycle(engine):
    base = [sys.executable, "-m", "engine", "--root", str(engine.config.root),
            "--run-root", str(engine.config.run_root)]

    def cli(*args, check=True):
        out = subprocess.run(base + list(args), capture_output=True, text=True, timeout=60)
        if check:
            assert out.returncode == 0, out.stderr
        return out

    out = cli("run", "--rm", "test/busybox", "sh", "-c", "echo out; echo err >&2; exit 4", check=False)
    assert (out.returncode, out.stdout, out.stderr) == (4, "out\n", "err\n")
    cid = cli("run", "-d", "--name", "bg", "-l", "k=v", "test/busybox", *LOOP).stdout.strip()
    assert len(cid) == 64
    rows = [json.loads(line) for line in cli("ps", "--format", "json").stdout.splitlines()]
    assert [r["Id"] for r in rows] == [cid]
    assert cli("ps", "-q", "--filter", "label=k=v").stdout.split() == [cid[:12]]
    assert "bg" in cli("ps").stdout
    assert json.loads(cli("inspect", "bg").stdout)[0]["State"]["Running"] is True
    assert "sh -c" in cli("top", "bg").stdout
    cli("stop", "-t", "5", "bg")
    assert cli("wait", "bg").stdout.strip() == "7"
    bad = cli("run", "--memory", "12 parsecs", "test/busybox", "true", check=False)
    assert bad.returncode != 0 and "invalid size" in bad.stderr
    bad = cli("kill", "-s", "NOPE", "bg", check=False)
    assert bad.returncode != 0 and "invalid signal" in bad.stderr
    cli("rm", "bg")
    assert cli("ps", "-a", "-q").stdout == ""
    assert all_leftovers(engine) == []


def test_many_containers_at_once(engine):
    ids = [engine.run("test/busybox", LOOP, name=f"c{i}")[0].id for i in range(10)]
    assert len(engine.list()) == 10
    assert len({engine.inspect(i)["State"]["Pid"] for i in ids}) == 10
    for i in ids:
        engine.remove(i, force=True)
    wait_for(lambda: all_leftovers(engine) == [])


def test_attach_with_stdin_and_a_late_second_client(engine):
    from engine.supervisor.monitor import F_EXIT, F_STDOUT

    c = engine.create("test/busybox", ["sh", "-c", "echo ready; read line; echo got $line; sleep 0.3"],
                      open_stdin=True)
    engine.start(c.id)
    conn = engine.attach(c.id, stdin=True, replay=True)
    watcher = engine.attach(c.id, replay=True)  # a second client sees the same output
    conn.write(b"hello\n")
    conn.close_stdin()
    seen = {id(conn): b"", id(watcher): b""}
    for client in (conn, watcher):
        while True:
            kind, payload = client.read()
            if kind == F_STDOUT:
                seen[id(client)] += payload
            if kind in (F_EXIT, None):
                break
        assert kind == F_EXIT and json.loads(payload)["ExitCode"] == 0
    assert seen[id(conn)] == seen[id(watcher)] == b"ready\ngot hello\n"
