"""The keeper: one small process per container on a bridge network.

A userland proxy, like Docker's ``docker-proxy``: no DNAT rule, so no iptables state to
leak, and ``127.0.0.1:<port>`` works without ``route_localnet``. Run as
``python -m engine.keeper PLAN FDS`` with the host sockets ``engine.ports`` bound, it:

- relays TCP connections and UDP datagrams to the container's address;
- watches the container's monitor (a pidfd): when the monitor exits (the container has
  stopped for good), or on SIGTERM, it closes the ports and tears the container's
  network down (``Networks.teardown``), so that a stopped container holds no port,
  veth or namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys

UDP_IDLE_SECONDS = 60



async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            writer.close()


def _tcp_handler(target: tuple[str, int]):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), 10)
        except (TimeoutError, OSError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        writer.close()
        up_writer.close()
    return handle


class _UdpRelay(asyncio.DatagramProtocol):
    """One host socket; a connected socket to the container per client address."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.clients: dict[tuple, tuple[asyncio.DatagramTransport, float]] = {}
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        loop = asyncio.get_running_loop()
        entry = self.clients.get(addr)
        if entry is None:
            loop.create_task(self._open(addr, data))
            return
        entry[0].sendto(data)
        self.clients[addr] = (entry[0], loop.time())

    async def _open(self, addr, data):
        loop = asyncio.get_running_loop()
        relay = self

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, reply, _):
                if relay.transport is not None:
                    relay.transport.sendto(reply, addr)

        transport, _ = await loop.create_datagram_endpoint(Back, remote_addr=self.target)
        self.clients[addr] = (transport, loop.time())
        transport.sendto(data)

    def expire(self, now: float) -> None:
        for addr, (transport, last) in list(self.clients.items()):
            if now - last > UDP_IDLE_SECONDS:
                transport.close()
                del self.clients[addr]


async def _serve(plan: dict, fds: list[int]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    pid, start = plan["monitor"]
    try:
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, stop.set)
    except OSError:
        pidfd = None
        stop.set()
    from engine.monitor import process_start_time

    if process_start_time(pid) != start:
        stop.set()
    servers, relays = [], []
    for fd, port in zip(fds, plan["ports"], strict=True):
        target = (port["target_ip"], port["container_port"])
        sock = socket.socket(fileno=fd)
        if port["proto"] == "tcp":
            servers.append(await asyncio.start_server(_tcp_handler(target), sock=sock))
        else:
            _, relay = await loop.create_datagram_endpoint(lambda t=target: _UdpRelay(t), sock=sock)
            relays.append(relay)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 15)
        except TimeoutError:
            for relay in relays:
                relay.expire(loop.time())
    for server in servers:
        server.close()
    for relay in relays:
        if relay.transport is not None:
            relay.transport.close()
    if pidfd is not None:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def keeper_main(argv: list[str]) -> int:
    """``python -m engine.keeper PLAN_JSON FD,FD...``"""
    plan = json.loads(argv[1])
    fds = [int(x) for x in argv[2].split(",") if x]
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    try:
        asyncio.run(_serve(plan, fds))
    finally:
        from pathlib import Path

        from engine.config import EngineConfig
        from engine.networks import Networks

        config = EngineConfig(root=Path(plan["root"]), run_root=Path(plan["run_root"]))
        try:
            Networks(config).teardown(plan["container"], keeper=os.getpid())
        except Exception as exc:  # nobody to tell but the engine's next start or rm
            print(f"keeper: teardown failed: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(keeper_main(sys.argv))
