"""Bad input and refused commands get Docker's clear one-line answers (issue 13, item 8):
over-long or malformed container names, ``-v`` specs with an empty part, and ``exec`` of a
command the runtime cannot start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.containers import exec as ex
from engine.errors import InvalidArgument, NotFound
from tests.support.containers import cleanup, make_engine

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LONG = "a" * 300


@pytest.fixture(scope="module")
def engine():
    eng, _ = make_engine()
    eng.run("test/busybox", ["sleep", "600"], name="box")
    yield eng
    cleanup(eng)


def cli(engine, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", "--root", str(engine.config.root), "--run-root",
                           str(engine.config.run_root), *args], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, BERTH_ENGINE_CLI_SERVER="0"), timeout=60)


def one_line(result, code: int = 1) -> str:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def only_box(engine) -> bool:
    return [c["Names"] for c in engine.list(all=True)] == [["/box"]]


@pytest.mark.parametrize("name, why", [
    (LONG, "at most 128 characters are allowed"),
    ("-x", "only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed"),
    ("a", "only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed"),
    ("a/b", "only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed"),
])
def test_bad_container_names_are_refused_in_one_line(engine, name, why):
    line = one_line(cli(engine, "run", "-d", f"--name={name}", "test/busybox", "true"))
    assert line.startswith("Error: Invalid container name (") and line.endswith(why)
    assert len(line) < 200
    assert why in one_line(cli(engine, "rename", "box", "--", name))
    assert only_box(engine)
    with pytest.raises(InvalidArgument):
        engine.create("test/busybox", ["true"], name=name)
    assert only_box(engine)


def test_a_long_name_is_simply_not_found(engine):
    for command in (["inspect", LONG], ["logs", LONG], ["rm", "-f", LONG], ["stop", LONG]):
        assert one_line(cli(engine, *command)) == f"Error: No such container: {LONG}"
    with pytest.raises(NotFound):
        engine.get(LONG)


@pytest.mark.parametrize("spec", [":/x", "/tmp::/x", "/tmp:/x:", "vol::ro"])
def test_a_volume_spec_with_an_empty_section_is_refused(engine, spec):
    assert one_line(cli(engine, "run", "-v", spec, "test/busybox", "true")) == \
        f"Error: invalid spec: {spec}: empty section between colons"
    assert only_box(engine)


@pytest.mark.parametrize("flags", [[], ["-t"], ["-d"], ["-i"]], ids=["plain", "tty", "detached", "stdin"])
def test_exec_of_a_missing_binary_says_it_as_docker(engine, flags):
    result = cli(engine, "exec", *flags, "box", "nope")
    assert one_line(result, 127) == 'OCI runtime exec failed: exec: "nope": executable file not found in $PATH'
    assert result.stdout == ""
    line = one_line(cli(engine, "exec", *flags, "box", "/etc/passwd"), 126)
    assert line == 'OCI runtime exec failed: exec: "/etc/passwd": permission denied'


def test_exec_through_the_api_says_it_too(engine):
    with pytest.raises(ex.ExecRefused) as refused:
        ex.exec_run(engine, "box", ["nope"])
    assert str(refused.value) == 'OCI runtime exec failed: exec: "nope": executable file not found in $PATH'
    assert refused.value.exit_code == 127
    with pytest.raises(ex.ExecRefused, match="not found"):
        ex.exec_tty(engine, "box", ["nope"])


def test_a_command_writing_what_looks_like_runc_is_left_alone(engine):
    line = 'time="2024-01-01T00:00:00Z" level=error msg="exec failed: mine"'
    result = cli(engine, "exec", "box", "sh", "-c", f"echo '{line}' >&2; exit 3")
    assert (result.returncode, result.stderr) == (3, line + "\n")
