"""A minimal asyncio websocket client (RFC 6455) for the live benchmarks: no dependency,
enough for text and binary frames, fragmentation, ping and close."""

from __future__ import annotations

import asyncio
import base64
import os
import struct


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str, cookie: str = "") -> WebSocket:
        reader, writer = await asyncio.open_connection(host, port, limit=2 ** 24)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n"
                   f"Cookie: {cookie}\r\n\r\n")
        writer.write(request.encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))
        return cls(reader, writer)

    async def send(self, data: str | bytes) -> None:
        opcode = 1 if isinstance(data, str) else 2
        payload = data.encode() if isinstance(data, str) else data
        self.writer.write(self._frame(opcode, payload))
        await self.writer.drain()

    @staticmethod
    def _frame(opcode: int, payload: bytes) -> bytes:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        # masking with a repeated key: int arithmetic is fast enough for benchmark messages
        n = int.from_bytes(payload, "little") if payload else 0
        key = int.from_bytes((mask * (size // 4 + 1))[:size], "little") if size else 0
        masked = (n ^ key).to_bytes(size, "little") if size else b""
        return head + mask + masked

    async def recv(self) -> str | bytes | None:
        """The next message (None when the server closed)."""
        parts, kind = [], None
        while True:
            b1, b2 = await self.reader.readexactly(2)
            opcode, size = b1 & 0x0F, b2 & 0x7F
            if size == 126:
                size = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(size)
            if opcode == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return None
            if opcode == 9:
                self.writer.write(self._frame(10, payload))
                continue
            if opcode == 10:
                continue
            if opcode in (1, 2):
                kind = opcode
            parts.append(payload)
            if b1 & 0x80:
                data = b"".join(parts)
                return data.decode() if kind == 1 else data

    async def close(self) -> None:
        try:
            self.writer.write(self._frame(8, struct.pack("!H", 1000)))
            await self.writer.drain()
        except ConnectionError:
            pass
        self.writer.close()
