"""The keeper: one small process per container on a bridge network.

A userland proxy, like Docker's ``docker-proxy``: no DNAT rule, so no iptables state to
leak, and ``127.0.0.1:<port>`` works without ``route_localnet``. Started by
``engine.net.networks.spawn_keeper`` with the host sockets ``engine.net.ports`` bound, it:

- relays TCP connections and UDP datagrams to the container's address;
- watches the container's monitor (a pidfd): when the monitor exits (the container has
  stopped for good), or on SIGTERM, it closes the ports and tears the container's
  network down (``Networks.teardown``), so that a stopped container holds no port,
  veth or namespace;
- but a monitor can die with its container still running (``kill -9``): then the keeper
  says so (a ``container unsupervised`` event) and watches the container's init process
  instead (known from the runtime's state: pid and start time), so the published ports
  serve as long as the container runs. ``restart`` brings a monitor back.

Like the monitor it runs as ``python -I -S`` importing this file as the top-level module
``keeper``, standard library only (selectors, no asyncio: ~10 MB instead of ~20 MB); the
engine is imported only for the final teardown.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import signal
import socket
import sys
import time

# Loaded the way the monitor is (``python -I -S``, standard library only).
from engine.base.eventlog import emit_event
from engine.base.proc import process_start_time

UDP_IDLE_SECONDS = 60
BUFFER_LIMIT = 256 * 1024  # per direction: stop reading while the other side lags this much
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Tunnel:
    """One relayed TCP connection: the client's socket and ours to the container."""

    def __init__(self, keeper: Keeper, client: socket.socket, target: tuple[str, int]):
        self.keeper, self.sel = keeper, keeper.sel
        self.a = client
        self.b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for s in (self.a, self.b):
            s.setblocking(False)
        self.pending = {self.a: bytearray(), self.b: bytearray()}  # to be sent to that socket
        self.eof = {self.a: False, self.b: False}  # that socket will send nothing more
        self.connected = False
        self.closed = False
        self.interest: dict[socket.socket, int] = {}
        code = self.b.connect_ex(target)
        if code not in (0, errno.EINPROGRESS):
            self.close()
            return
        self.update()

    def other(self, s: socket.socket) -> socket.socket:
        return self.b if s is self.a else self.a

    def update(self) -> None:
        if self.closed:
            return
        for s in (self.a, self.b):
            events = 0
            if not self.connected:
                events = WRITE if s is self.b else 0
            else:
                if not self.eof[s] and len(self.pending[self.other(s)]) < BUFFER_LIMIT:
                    events |= READ
                if self.pending[s]:
                    events |= WRITE
            old = self.interest.get(s, 0)
            if events == old:
                continue
            if old and events:
                self.sel.modify(s, events, self)
            elif events:
                self.sel.register(s, events, self)
            else:
                self.sel.unregister(s)
            self.interest[s] = events

    def on_event(self, s: socket.socket, mask: int) -> None:
        try:
            if not self.connected:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    return self.close()
                self.connected = True
                return self.update()
            if mask & READ:
                data = s.recv(65536)
                if data:
                    self.pending[self.other(s)] += data
                else:
                    self.eof[s] = True
                    if not self.pending[self.other(s)]:
                        self._shutdown(self.other(s))
            if mask & WRITE and self.pending[s]:
                sent = s.send(self.pending[s])
                del self.pending[s][:sent]
                if not self.pending[s] and self.eof[self.other(s)]:
                    self._shutdown(s)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return self.close()
        if all(self.eof.values()) and not any(self.pending.values()):
            return self.close()
        self.update()

    @staticmethod
    def _shutdown(s: socket.socket) -> None:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for s in (self.a, self.b):
            if self.interest.get(s):
                self.sel.unregister(s)
            s.close()
        self.keeper.tunnels.discard(self)


class Keeper:
    def __init__(self, plan: dict, fds: list[int]):
        self.plan = plan
        self.sel = selectors.DefaultSelector()
        self.tunnels: set[Tunnel] = set()
        self.udp_clients: dict[tuple, list] = {}  # (host fd, client addr) -> [socket, last use]
        self.stopping = False
        wake_r, self.wake_w = os.pipe()
        for fd in (wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.sel.register(wake_r, READ, ("wake",))
        self.watched_fd = None
        self.poll_monitor = None  # the watched (pid, start) where pidfds are missing (Linux < 5.3)
        self.supervised = True
        self.watch(*plan["monitor"])
        for fd, port in zip(fds, plan["ports"], strict=True):
            kind = socket.SOCK_STREAM if port["proto"] == "tcp" else socket.SOCK_DGRAM
            sock = socket.socket(fileno=fd, type=kind)
            sock.setblocking(False)
            self.sel.register(sock, READ, ("listen" if kind == socket.SOCK_STREAM else "udp",
                                           (port["target_ip"], port["container_port"])))

    def _stop(self, *_) -> None:
        self.stopping = True

    def watch(self, pid: int, start: int) -> None:
        """Follow the process ``pid`` (the monitor, or the container's init once the monitor
        is gone); when it is no longer there, ``gone``."""
        if self.watched_fd is not None:
            self.sel.unregister(self.watched_fd)
            os.close(self.watched_fd)
            self.watched_fd = None
        self.poll_monitor = None
        try:
            self.watched_fd = os.pidfd_open(pid)
            self.sel.register(self.watched_fd, READ, ("watched",))
        except (OSError, AttributeError):
            self.poll_monitor = (pid, start)
        if process_start_time(pid) != start:
            self.gone()

    def gone(self) -> None:
        """The watched process exited: the container's init if the monitor died under it,
        else the end."""
        if not self.supervised:
            self.stopping = True
            return
        self.supervised = False
        init = container_init(self.plan)
        if init is None:
            self.stopping = True
            return
        try:
            # One event per run, from whoever notices first (engine.containers.manager too).
            marker = os.path.join(self.plan["run_root"], "c", self.plan["container"][:12], "unsupervised")
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            emit_event(self.plan["events"], "container", "unsupervised", self.plan["container"],
                       {"name": self.plan.get("name", ""), "pid": str(init[0])})
        except (OSError, KeyError):
            pass  # a full disk must not cost the container its ports
        self.watch(*init)

    def run(self) -> None:
        last_expiry = time.monotonic()
        while not self.stopping:
            if self.poll_monitor and process_start_time(self.poll_monitor[0]) != self.poll_monitor[1]:
                self.gone()
                continue
            for key, mask in self.sel.select(timeout=1 if self.poll_monitor else 15):
                data = key.data
                if isinstance(data, Tunnel):
                    data.on_event(key.fileobj, mask)
                elif data[0] == "watched":
                    self.gone()
                    break  # the selector's registrations changed
                elif data[0] == "wake":
                    try:
                        os.read(key.fd, 512)
                    except OSError:
                        pass
                elif data[0] == "listen":
                    self._accept(key.fileobj, data[1])
                elif data[0] == "udp":
                    self._udp_in(key.fileobj, data[1])
                elif data[0] == "udp-back":
                    self._udp_back(key.fileobj, data[1], data[2])
            now = time.monotonic()
            if now - last_expiry > 15:
                last_expiry = now
                for k, (s, last) in list(self.udp_clients.items()):
                    if now - last > UDP_IDLE_SECONDS:
                        self.sel.unregister(s)
                        s.close()
                        del self.udp_clients[k]
        for tunnel in list(self.tunnels):
            tunnel.close()

    def _accept(self, listener: socket.socket, target) -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        tunnel = Tunnel(self, client, target)
        if not tunnel.closed:
            self.tunnels.add(tunnel)

    def _udp_in(self, host: socket.socket, target) -> None:
        try:
            data, addr = host.recvfrom(65536)
        except OSError:
            return
        entry = self.udp_clients.get((host.fileno(), addr))
        if entry is None:
            back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            back.setblocking(False)
            try:
                back.connect(target)
            except OSError:
                back.close()
                return
            self.sel.register(back, READ, ("udp-back", host, addr))
            entry = self.udp_clients[(host.fileno(), addr)] = [back, time.monotonic()]
        entry[1] = time.monotonic()
        try:
            entry[0].send(data)
        except OSError:
            pass

    def _udp_back(self, back: socket.socket, host: socket.socket, addr) -> None:
        try:
            host.sendto(back.recv(65536), addr)
        except OSError:
            pass


def container_init(plan: dict) -> tuple[int, int] | None:
    """(pid, start time) of the container's init if it still runs, from the runtime's
    state (runc's ``state.json``: the start time tells it from a recycled pid)."""
    root = plan.get("runtime_root")
    if not root:
        return None
    try:
        with open(os.path.join(root, plan["container"], "state.json")) as f:
            state = json.load(f)
        pid, start = int(state["init_process_pid"]), int(state["init_process_start"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (pid, start) if pid > 0 and process_start_time(pid) == start else None


def main(argv: list[str]) -> int:
    """``keeper PLAN_JSON FD,FD...``"""
    plan = json.loads(argv[1])
    fds = [int(x) for x in argv[2].split(",") if x]
    try:
        Keeper(plan, fds).run()
    finally:
        from pathlib import Path

        from engine.config import EngineConfig
        from engine.net.networks import Networks

        config = EngineConfig(root=Path(plan["root"]), run_root=Path(plan["run_root"]))
        try:
            Networks(config).teardown(plan["container"], keeper=os.getpid())
        except Exception as exc:  # nobody to tell but the engine's next start or rm
            print(f"keeper: teardown failed: {exc}", file=sys.stderr)
    return 0


def run_main() -> None:
    sys.exit(main(sys.argv))

