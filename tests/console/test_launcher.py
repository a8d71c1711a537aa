"""The launcher behind the README's start command."""

import os
import subprocess
import sys
from pathlib import Path

from console import launcher
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
