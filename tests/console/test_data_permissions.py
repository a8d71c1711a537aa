"""The console's data directory and its SQLite files are the console's alone (issue 12):
0700 and 0600 from the first start, existing ones fixed at start, the WAL and its index too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Starting the console (its settings), then writing through Django in WAL mode; the modes of
# the database's files are read while the connection is open (SQLite removes the WAL at close).
WRITE = ("import django, json, pathlib; django.setup(); from django.conf import settings; "
         "from django.db import connection; c = connection.cursor(); "
         "c.execute('CREATE TABLE IF NOT EXISTS t (x)'); c.execute('INSERT INTO t VALUES (1)'); "
         "print(json.dumps({p.name: p.stat().st_mode & 0o777 for p in settings.DATA_DIR.glob('berth.sqlite3*')}))")


def start(data_dir: Path, code: str = WRITE) -> str:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "console.settings", "BERTH_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True).stdout


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_data_dir_and_database_are_private(tmp_path):
    data = tmp_path / "data"
    old = os.umask(0o022)
    try:
        modes = json.loads(start(data))
    finally:
        os.umask(old)
    assert mode(data) == 0o700
    assert {"berth.sqlite3", "berth.sqlite3-wal", "berth.sqlite3-shm"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


def test_existing_world_readable_files_are_fixed_at_start(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    for name in ("berth.sqlite3", "berth.sqlite3-wal", "berth.sqlite3-shm"):
        (data / name).write_bytes(b"")
        os.chmod(data / name, 0o644)
    start(data, "import django; django.setup()")
    assert mode(data) == 0o700
    for name in ("berth.sqlite3", "berth.sqlite3-wal", "berth.sqlite3-shm"):
        assert mode(data / name) == 0o600, name
