"""Published ports: ``-p`` parsing and binding the host sockets.

The starter binds the host sockets itself, so that a taken port is an error before the
container starts; ``engine.net.keeper`` then relays them to the container.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from engine.errors import Conflict, InvalidArgument


@dataclass(frozen=True)
class PortSpec:
    host_ip: str  # "" for all addresses
    host_port: int  # 0: a free port, chosen at start
    container_port: int
    proto: str  # "tcp" | "udp"

    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


def _port(text: str, what: str, spec: str, allow_zero: bool = False) -> int:
    if not text.isdigit():
        raise InvalidArgument(f"invalid port specification {spec!r}: {what} {text!r} is not a number"
                              if text else f"invalid port specification {spec!r}: no {what}")
    value = int(text)
    if not (0 if allow_zero else 1) <= value <= 65535:
        raise InvalidArgument(f"invalid port specification {spec!r}: {what} {value} is out of range "
                              "(1-65535)")
    return value


def parse_publish(text: str) -> PortSpec:
    """``[ip:][host_port:]container_port[/tcp|udp]``; ``-p 80`` publishes on a free port."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("invalid port specification: empty")
    spec = text.strip()
    body, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid port specification {spec!r}: protocol {proto!r} "
                              "(use tcp or udp)")
    host_ip = ""
    if body.startswith("["):  # [::1]:8080:80
        end = body.find("]")
        if end == -1:
            raise InvalidArgument(f"invalid port specification {spec!r}")
        host_ip, body = body[1:end], body[end + 2:]
        parts = ["", *body.split(":")] if body else [""]
        parts = parts[1:]
    else:
        parts = body.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
        elif len(parts) > 3:
            raise InvalidArgument(f"invalid port specification {spec!r}")
    if any("-" in p for p in parts):
        raise InvalidArgument(f"invalid port specification {spec!r}: port ranges are not supported")
    if len(parts) == 1:
        host_port, container_port = 0, _port(parts[0], "container port", spec)
    else:
        host_port = _port(parts[0], "host port", spec, allow_zero=True) if parts[0] else 0
        container_port = _port(parts[1], "container port", spec)
    if host_ip:
        try:
            address = ipaddress.ip_address(host_ip)
        except ValueError:
            raise InvalidArgument(f"invalid port specification {spec!r}: {host_ip!r} is not an "
                                  "IP address") from None
        host_ip = str(address)
        if address.is_unspecified and address.version == 4:
            host_ip = ""
    return PortSpec(host_ip, host_port, container_port, proto)


def parse_publish_list(items) -> list[PortSpec]:
    specs = [item if isinstance(item, PortSpec) else parse_publish(item) for item in items or []]
    seen = set()
    for s in specs:
        key = (s.host_ip, s.host_port, s.proto)
        if s.host_port and key in seen:
            raise InvalidArgument(f"port {s.host_port}/{s.proto} is published twice")
        seen.add(key)
    return specs


def bind(spec: PortSpec) -> socket.socket:
    """The listening (tcp) or bound (udp) host socket of one published port."""
    family = socket.AF_INET6 if ":" in spec.host_ip else socket.AF_INET
    kind = socket.SOCK_STREAM if spec.proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        if spec.proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((spec.host_ip or "0.0.0.0", spec.host_port))
        if spec.proto == "tcp":
            sock.listen(128)
    except OSError as exc:
        sock.close()
        where = f"{spec.host_ip or '0.0.0.0'}:{spec.host_port}/{spec.proto}"
        if exc.errno == 98:  # EADDRINUSE
            raise Conflict(f"cannot publish {where}: the port is already allocated") from None
        raise InvalidArgument(f"cannot publish {where}: {exc.strerror}") from None
    return sock
