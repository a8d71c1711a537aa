"""A volume's size is measured inside it: a container that swaps a directory of its
volume for a symlink to a host directory (while the size is measured) never makes the
engine walk the host."""

from __future__ import annotations

import os
import subprocess
import sys

from engine.base.inroot import tree_size

# The container's side of the race, in its own process (so it really runs meanwhile).
SWAPPER = """
import os, sys, time
data, host = sys.argv[1], sys.argv[2]
real, moved = os.path.join(data, "sub"), os.path.join(data, "sub.real")
print("ready", flush=True)
while True:
    os.rename(real, moved)
    os.symlink(host, real)
    time.sleep(0.0002)
    os.unlink(real)
    os.rename(moved, real)
    time.sleep(0.0002)
"""


def test_the_size_walk_never_follows_a_symlink_swapped_in_meanwhile(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    for n in range(4):
        (host / f"big{n}").write_bytes(os.urandom(2 << 20))
    data = tmp_path / "volume" / "_data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "small").write_bytes(b"x" * 4096)
    for n in range(20):
        (data / f"d{n}").mkdir()
    (data / "escape").symlink_to(host)  # a plain symlink: never followed
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(data), str(host)], stdout=subprocess.PIPE)
    try:
        assert swapper.stdout.readline() == b"ready\n"
        sizes = [tree_size(data) for _ in range(2000)]
    finally:
        swapper.kill()
        swapper.wait()
    assert max(sizes) < 1 << 20, "the size walk followed a symlink onto the host"
