"""What the engine keeps of a container (its config with the environment, the OCI spec,
its log) is root's alone: a container's secrets are not readable by other host users."""

from __future__ import annotations

import os


def mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_config_spec_and_log_are_owner_only(engine):
    old = os.umask(0o022)  # as a service manager would start the engine
    try:
        container, code = engine.run("test/busybox", ["sh", "-c", "echo $DB_PASSWORD"], detach=False,
                                     env=["DB_PASSWORD=hunter2"])
    finally:
        os.umask(old)
    assert code == 0
    directory = container.dir
    assert mode(directory) == 0o700
    for name in ("config.json", "bundle/config.json", "json.log", "state.json"):
        assert mode(directory / name) & 0o077 == 0, name
    assert "hunter2" in (directory / "json.log").read_text()
