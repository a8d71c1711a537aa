"""Search a container's log in a child process, so that a pathological regular expression
(``(a+)+$`` against a long line of ``a``) is killed at its deadline instead of holding a
thread of the console forever. Python's ``re`` backtracks and cannot be interrupted.

The child (``python -I -S`` running ``_main`` here) prints one JSON object: ``count``, the
``cursors`` of the last ``limit`` matches, their raw ``lines`` when asked, and ``partial``
(it stopped at the soft deadline). Past the hard deadline the parent kills it and reports
an empty, partial result. ``LiveFilter`` does the same for the "only matching lines" filter
of live batches, with one long-lived child per filtering socket.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The child: a lean interpreter importing this module (by its one name) and running _main.
CHILD = f"import sys; sys.path.append({str(REPO)!r}); from engine.logs import search; search._main()"
GRACE = 2.0  # seconds between the child's own deadline and its kill


def search(log_path, text: str, *, regex: bool = False, case: bool = False, stdout: bool = True,
           stderr: bool = True, limit: int = 10_000, want_lines: bool = False,
           timeout: float = 10.0) -> tuple[int, list[tuple[int, int]], list[bytes], bool]:
    """(count, cursors, lines, partial). ValueError for an invalid pattern (checked here first)."""
    from engine.logs.stream import compile_search

    compile_search(text, regex=regex, case=case)  # a bad pattern is the caller's error, at once
    request = {"path": str(log_path), "text": text, "regex": regex, "case": case, "stdout": stdout,
               "stderr": stderr, "limit": limit, "lines": want_lines, "seconds": timeout}
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", CHILD], input=json.dumps(request).encode(),
                              capture_output=True, timeout=timeout + GRACE, check=False)
    except subprocess.TimeoutExpired:
        return 0, [], [], True
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace").strip().splitlines()[-1:] or "search failed")
    result = json.loads(done.stdout)
    lines = [line.encode() for line in result["lines"]]
    return result["count"], [tuple(c) for c in result["cursors"]], lines, result["partial"]


class LiveFilter:
    """Keeps the matching lines of live batches, in a child process (asyncio): a batch that
    takes longer than ``timeout`` kills the child and raises TimeoutError."""

    def __init__(self, text: str, regex: bool, case: bool, timeout: float = 5.0):
        from engine.logs.stream import compile_search

        compile_search(text, regex=regex, case=case)
        self.spec = json.dumps({"text": text, "regex": regex, "case": case})
        self.timeout = timeout
        self.proc = None

    async def keep(self, data: bytes) -> tuple[bytes, int]:
        import asyncio

        if self.proc is None:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", "-c", CHILD, "--serve", self.spec,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            await self.proc.stdin.drain()
            head = await asyncio.wait_for(self.proc.stdout.readexactly(8), self.timeout)
            count, size = struct.unpack(">II", head)
            kept = await asyncio.wait_for(self.proc.stdout.readexactly(size), self.timeout)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            raise TimeoutError("the filter is too slow for these lines") from None
        return kept, count

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


def _serve(spec: dict) -> None:
    from engine.logs.stream import compile_search

    pattern = compile_search(spec["text"], regex=spec["regex"], case=spec["case"])
    read, write = sys.stdin.buffer.read, sys.stdout.buffer
    while head := read(4):
        data = read(struct.unpack(">I", head)[0])
        kept = []
        for line in data.split(b"\n"):
            if not line:
                continue
            try:
                text = json.loads(line).get("log", "")
            except ValueError:
                continue
            if pattern.search(text):
                kept.append(line)
        out = b"\n".join(kept) + (b"\n" if kept else b"")
        write.write(struct.pack(">II", len(kept), len(out)) + out)
        write.flush()


def _main() -> None:
    from engine.logs.stream import LogStream, compile_search

    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        _serve(json.loads(sys.argv[2]))
        return
    request = json.loads(sys.stdin.buffer.read())
    pattern = compile_search(request["text"], regex=request["regex"], case=request["case"])
    deadline = time.monotonic() + request["seconds"]
    count, cursors, lines, partial = LogStream(request["path"]).search(
        pattern, limit=request["limit"], stdout=request["stdout"], stderr=request["stderr"],
        deadline=lambda: time.monotonic() > deadline)
    json.dump({"count": count, "cursors": cursors, "partial": partial,
               "lines": [line.decode("utf-8", "replace") for line in lines] if request["lines"] else []},
              sys.stdout)

