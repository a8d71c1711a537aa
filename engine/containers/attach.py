"""The client side of the monitor's attach protocol (``engine.supervisor.monitor`` has the
server side and the frame types): frames in, frames out."""

from __future__ import annotations

import json
import socket
import struct

from engine.supervisor.monitor import F_CLOSE_STDIN, F_RESIZE, F_STDIN


class AttachConnection:
    """Client side of the monitor's attach protocol: frames in, frames out."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> tuple[int | None, bytes]:
        """The next (kind, payload): F_STDOUT, F_STDERR, F_INFO or F_EXIT; (None, b"") at the end."""
        return read_frame(self.sock)

    def write(self, data: bytes) -> None:
        self.sock.sendall(struct.pack(">BI", F_STDIN, len(data)) + data)

    def close_stdin(self) -> None:
        self.sock.sendall(struct.pack(">BI", F_CLOSE_STDIN, 0))

    def resize(self, height: int, width: int) -> None:
        payload = json.dumps({"h": height, "w": width}).encode()
        self.sock.sendall(struct.pack(">BI", F_RESIZE, len(payload)) + payload)

    def close(self) -> None:
        self.sock.close()


def read_frame(sock: socket.socket) -> tuple[int | None, bytes]:
    header = _recv_exact(sock, 5)
    if header is None:
        return None, b""
    kind, size = struct.unpack(">BI", header)
    payload = _recv_exact(sock, size) if size else b""
    if payload is None:
        return None, b""
    return kind, payload


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        try:
            chunk = sock.recv(size - len(buf))
        except ConnectionResetError:  # the monitor closed with us still in its backlog
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)
