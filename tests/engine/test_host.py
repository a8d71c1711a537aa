"""Host facts: what `python -m engine info` reports."""

import json
import subprocess
import sys

from engine.config import EngineConfig
from engine.system import host


def test_runc_is_found_working_and_crun_is_not_assumed(tmp_path):
    runtimes = {r.name: r for r in host.probe_runtimes()}
    assert runtimes["runc"].works, runtimes["runc"].error
    assert runtimes["runc"].version
    # crun is either absent or really probed; never reported as working on a failed probe.
    crun = runtimes["crun"]
    assert crun.works or crun.error


def test_facts_describe_storage_kernel_and_cgroups(tmp_path):
    facts = host.facts(EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run"))
    assert facts["runtime"] == "runc"
    assert facts["storage_root"] == str(tmp_path / "root")
    assert 0 < facts["storage_free_bytes"] <= facts["storage_total_bytes"]
    assert facts["cgroup_mode"] in {"v1", "v2", "hybrid"}
    assert facts["overlayfs"] is True
    # the overlay probe leaves nothing mounted or behind
    assert list((tmp_path / "root").iterdir()) == []


def test_cli_info_prints_the_same_facts_as_json(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "engine", "--root", str(tmp_path), "info", "--format", "json"],
        capture_output=True, text=True, check=True,
    )
    facts = json.loads(out.stdout)
    assert facts["runtime"] == "runc"
    assert facts["storage_root"] == str(tmp_path)


def test_cli_without_command_prints_help():
    out = subprocess.run([sys.executable, "-m", "engine"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "info" in out.stdout
