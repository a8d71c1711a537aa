"""A TCP proxy on loopback that slows what a server sends (a slow registry, a slow link):
a fault injector in front of a real server, not a stand-in for it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

CHUNK = 64 << 10


def _pipe(src: socket.socket, dst: socket.socket, delay: float) -> None:
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
            if delay:
                time.sleep(delay)  # the throttle itself
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def slow_proxy(target: str, bytes_per_second: int) -> Iterator[str]:
    """Yields "127.0.0.1:PORT", which forwards to ``target`` ("host:port"), its answers
    throttled to about ``bytes_per_second``."""
    host, port = target.rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    connections: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((host, int(port)))
            connections.extend([client, upstream])
            threading.Thread(target=_pipe, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, client, CHUNK / bytes_per_second), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        for s in connections:
            with contextlib.suppress(OSError):
                s.close()
