"""The systemd units under deploy/systemd/, filled in by scripts/install-systemd.sh --render
(what the install writes to /etc/systemd/system), checked with `systemd-analyze verify` and
read back: the same commands as the launcher, restarted on failure, and beat unprivileged."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from console import processes

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
CONSOLE_UNITS = {"berth-web.service": processes.web("${BERTH_HOST}", "${BERTH_PORT}"),
                 "berth-worker.service": processes.worker(), "berth-beat.service": processes.beat(),
                 "berth-follower.service": processes.follower()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("units")
    subprocess.run([str(ROOT / "scripts" / "install-systemd.sh"), "--render", str(out)], check=True,
                   env={**os.environ, "BERTH_VENV": str(VENV), "BERTH_DATA_DIR": "/var/lib/berth-console"},
                   timeout=60)
    return out


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def test_every_unit_in_deploy_systemd_is_installed_filled_in(rendered):
    sources = sorted(p.name for p in (ROOT / "deploy" / "systemd").iterdir() if p.suffix in (".service", ".target"))
    assert sorted(p.name for p in rendered.iterdir()) == sources
    assert set(CONSOLE_UNITS) <= set(sources)
    for unit in rendered.iterdir():
        assert "@" not in unit.read_text().replace("berth@", ""), f"{unit.name} has a placeholder left"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(rendered):
    units = sorted(str(p) for p in rendered.iterdir())
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True,
                         timeout=120)
    problems = [line for line in (out.stdout + out.stderr).splitlines() if str(rendered) in line or "Failed" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


@pytest.mark.parametrize("name", sorted(CONSOLE_UNITS))
def test_each_console_process_runs_the_launchers_command_and_is_restarted_on_failure(rendered, name):
    service = read_unit(rendered / name)["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[0].startswith(str(VENV / "bin"))
    expected = CONSOLE_UNITS[name]
    assert [Path(command[0]).name, *command[1:len(expected)]] == [
        "python" if expected[0] == "python" else expected[0], *expected[1:]]
    assert service["Restart"] == "on-failure"
    assert service["WorkingDirectory"] == str(ROOT)
    assert read_unit(rendered / name)["Install"]["WantedBy"] == "berth.target"


def test_beat_runs_unprivileged_and_the_others_say_why_they_cannot_yet(rendered):
    assert read_unit(rendered / "berth-beat.service")["Service"]["User"] == "berth"
    for name in ("berth-web.service", "berth-worker.service", "berth-follower.service"):
        text = (rendered / name).read_text()
        assert "User=root" in text and "# root, for now:" in text


def test_stopping_the_worker_leaves_the_containers_monitors_alone(rendered):
    assert read_unit(rendered / "berth-worker.service")["Service"]["KillMode"] == "process"
