"""The launcher behind the README's start command."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from console import launcher
from engine.config import EngineConfig
from tests.support.networks import remove_engine
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_unreachable_redis_is_explained_not_a_traceback(tmp_path):
    env = {**os.environ, "BERTH_DATA_DIR": str(tmp_path),
           # a loopback address the launcher won't start a server for, with nothing listening
           "BERTH_REDIS_URL": f"redis://127.0.0.2:{free_port()}/0"}
    out = subprocess.run([sys.executable, "-m", "console.launcher"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "cannot reach Redis at redis://127.0.0.2" in out.stderr
    assert "BERTH_REDIS_URL" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_local_redis_that_is_down_is_started_for_berth(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert launcher.redis_reachable(url) is not None
    proc = launcher.ensure_redis(url, tmp_path)
    try:
        assert proc is not None
        assert launcher.redis_reachable(url) is None
        # a second start finds it running and starts nothing
        assert launcher.ensure_redis(url, tmp_path) is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- supervision: one launcher on a fresh data directory, its children killed for real -------

def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _started(log_path: Path) -> dict[str, int]:
    """The pid each child was last started with, from the launcher's log."""
    pids = {}
    for match in re.finditer(r"berth: started (\w+) \(pid (\d+)\)", log_path.read_text()):
        pids[match.group(1)] = int(match.group(2))
    return pids


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("launcher-data")
    run_root = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    env = {**os.environ, "BERTH_DATA_DIR": str(data_dir), "BERTH_ADMIN_PASSWORD": "launcher-test-pw-1",
           "BERTH_REDIS_URL": os.environ["BERTH_REDIS_URL"].rsplit("/", 1)[0] + "/4",
           "BERTH_ENGINE_ROOT": str(data_dir / "engine"), "BERTH_ENGINE_RUN": str(run_root)}
    port = free_port()
    log_path = data_dir / "launcher.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "console.launcher", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait(lambda: _serves(url) or proc.poll() is not None, 120, "the console's start")
        assert proc.poll() is None, log_path.read_text()
        yield {"proc": proc, "env": env, "url": url, "log": log_path}
    finally:
        pids = _started(log_path).values()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in pids:  # whatever a failed test left
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        remove_engine(EngineConfig(root=data_dir / "engine", run_root=run_root))
        shutil.rmtree(run_root, ignore_errors=True)


@pytest.mark.parametrize("name", ["events", "worker", "web"])
def test_a_child_killed_with_sigkill_is_started_again(launched, name):
    old = _started(launched["log"])[name]
    os.kill(old, signal.SIGKILL)
    new = _wait(lambda: (_started(launched["log"]).get(name) != old) and _started(launched["log"])[name],
                30, f"the restart of {name}")
    assert _alive(new)
    assert f"{name} (pid {old}) exited with -9; restarting it in" in launched["log"].read_text()
    assert launched["proc"].poll() is None  # the rest of the console carried on
    _wait(lambda: _serves(launched["url"]), 60, "the web server serving again")


def test_a_second_launcher_on_the_same_data_directory_refuses_and_names_the_first(launched):
    out = subprocess.run([sys.executable, "-m", "console.launcher", "--port", str(free_port())], cwd=ROOT,
                         env=launched["env"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert f"another launcher (pid {launched['proc'].pid}) is already running" in out.stderr
    assert "Traceback" not in out.stderr
    assert "started" not in out.stdout  # it started nothing


def test_a_launcher_killed_with_sigkill_leaves_no_child(launched):
    children = list(_started(launched["log"]).values())
    assert len(children) == 4 and all(_alive(pid) for pid in children)
    launched["proc"].kill()
    launched["proc"].wait()
    _wait(lambda: not any(_alive(pid) for pid in children), 60, "the children's end")
    assert not _serves(launched["url"])
