"""Network commands: ``network create|ls|inspect|rm|connect|disconnect|prune``."""

from __future__ import annotations

import json

from engine.cli import _options as options
from engine.errors import InvalidArgument


def _networks(config):
    from engine.engine import Engine

    return Engine(config).networks


def _container_id(config, ref: str) -> str:
    from engine.containers.manager import Containers

    return Containers(config).resolve(ref)


# The top-level commands register() adds: the CLI builds only the parser a command needs.
COMMANDS = ("network",)


def register(subparsers) -> None:
    top = subparsers.add_parser("network", help="manage networks")
    sub = top.add_subparsers(dest="network_command", metavar="COMMAND")
    top.set_defaults(handler=lambda args, config: top.print_help() or 2)

    p = sub.add_parser("create", help="create a bridge network")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet")
    p.add_argument("--gateway")
    p.add_argument("--internal", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("name")
    p.set_defaults(handler=cmd_create)
    p = sub.add_parser("ls", aliases=["list"], help="list networks")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.set_defaults(handler=cmd_ls)
    p = sub.add_parser("inspect", help="show networks in detail")
    p.add_argument("networks", nargs="+")
    p.set_defaults(handler=cmd_inspect)
    p = sub.add_parser("rm", aliases=["remove"], help="remove networks")
    p.add_argument("networks", nargs="+")
    p.set_defaults(handler=cmd_rm)
    p = sub.add_parser("connect", help="connect a container to a network")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("network")
    p.add_argument("container")
    p.set_defaults(handler=cmd_connect)
    p = sub.add_parser("disconnect", help="disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")
    p.set_defaults(handler=cmd_disconnect)
    p = sub.add_parser("prune", help="remove unused networks")
    p.add_argument("-f", "--force", action="store_true")
    p.set_defaults(handler=cmd_prune)


def cmd_create(args, config) -> int:
    if args.driver != "bridge":
        raise InvalidArgument(f"network driver {args.driver!r} is not supported (bridge only)")
    labels = options.pairs(args.label)
    net = _networks(config).create(args.name, subnet=args.subnet, gateway=args.gateway,
                                   labels=labels, internal=args.internal)
    print(net["Id"])
    return 0


def cmd_ls(args, config) -> int:
    nets = _networks(config).list(filters=options.filters(args.filter))
    if args.quiet:
        for n in nets:
            print(n["Id"][:12])
        return 0
    rows = [["NETWORK ID", "NAME", "DRIVER", "SUBNET", "SCOPE"]]
    for n in nets:
        subnet = ",".join(c["Subnet"] for c in n["IPAM"]["Config"])
        rows.append([n["Id"][:12], n["Name"], n["Driver"], subnet, n["Scope"]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_inspect(args, config) -> int:
    nets, out = _networks(config), []
    code = options.each(args.networks, lambda ref: out.append(nets.inspect(ref)))
    print(json.dumps(out, indent=4))
    return code


def cmd_rm(args, config) -> int:
    nets = _networks(config)
    return options.each(args.networks, lambda ref: nets.remove(ref) or ref)


def cmd_connect(args, config) -> int:
    _networks(config).connect(args.network, _container_id(config, args.container), aliases=args.alias)
    return 0


def cmd_disconnect(args, config) -> int:
    _networks(config).disconnect(args.network, _container_id(config, args.container), force=args.force)
    return 0


def cmd_prune(args, config) -> int:
    removed = _networks(config).prune()
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
    return 0
