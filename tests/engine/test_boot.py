"""Which containers ``engine.system.boot`` starts again: Docker's rules at daemon start."""

from __future__ import annotations

import pytest

from engine.system.boot import should_restore


def case(policy: str, *, exit_code: int = 255, stopped: bool = False, count: int = 0,
         status: str = "exited", started: bool = True) -> bool:
    name, _, limit = policy.partition(":")
    config = {"HostConfig": {"RestartPolicy": {"Name": name, "MaximumRetryCount": int(limit or 0)}}}
    state = {"Status": status, "ExitCode": exit_code, "StoppedByUser": stopped, "RestartCount": count,
             "StartedAt": "2026-01-01T00:00:00Z" if started else "0001-01-01T00:00:00Z"}
    return should_restore(config, state)


@pytest.mark.parametrize("policy,kwargs,expected", [
    ("no", {}, False),
    ("always", {}, True),
    ("always", {"stopped": True}, True),  # dockerd starts those too, at its start
    ("unless-stopped", {}, True),
    ("unless-stopped", {"stopped": True}, False),
    ("on-failure", {}, True),
    ("on-failure", {"exit_code": 0}, False),
    ("on-failure", {"stopped": True, "exit_code": 137}, False),  # a user's stop is no failure
    ("on-failure:3", {"count": 2}, True),
    ("on-failure:3", {"count": 3}, False),
    ("always", {"status": "created", "started": False}, False),  # never started: nothing to restore
    ("always", {"status": "dead"}, False),
])
def test_should_restore(policy, kwargs, expected):
    assert case(policy, **kwargs) is expected
