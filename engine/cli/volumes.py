"""Volume commands: ``volume create|ls|inspect|rm|prune``."""

from __future__ import annotations

import json

from engine.cli import _options as options
from engine.errors import InvalidArgument


def _volumes(config):
    from engine.engine import Engine

    return Engine(config).volumes


# The top-level commands register() adds: the CLI builds only the parser a command needs.
COMMANDS = ("volume",)


def register(subparsers) -> None:
    top = subparsers.add_parser("volume", help="manage volumes")
    sub = top.add_subparsers(dest="volume_command", metavar="COMMAND")
    top.set_defaults(handler=lambda args, config: top.print_help() or 2)
    p = sub.add_parser("create", help="create a volume")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("name", nargs="?")
    p.set_defaults(handler=cmd_create)
    p = sub.add_parser("ls", aliases=["list"], help="list volumes")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.set_defaults(handler=cmd_ls)
    p = sub.add_parser("inspect", help="show volumes in detail (with their size and users)")
    p.add_argument("volumes", nargs="+")
    p.set_defaults(handler=cmd_inspect)
    p = sub.add_parser("rm", aliases=["remove"], help="remove volumes")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("volumes", nargs="+")
    p.set_defaults(handler=cmd_rm)
    p = sub.add_parser("prune", help="remove volumes no container uses")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.set_defaults(handler=cmd_prune)


def cmd_create(args, config) -> int:
    if args.driver != "local":
        raise InvalidArgument(f"volume driver {args.driver!r} is not supported (local only)")
    labels = options.pairs(args.label)
    print(_volumes(config).create(args.name, labels=labels)["Name"])
    return 0


def cmd_ls(args, config) -> int:
    vols = _volumes(config).list(filters=options.filters(args.filter))
    if args.quiet:
        for v in vols:
            print(v["Name"])
        return 0
    print("DRIVER    VOLUME NAME")
    for v in vols:
        print(f"{v['Driver']:<10}{v['Name']}")
    return 0


def cmd_inspect(args, config) -> int:
    vols, out = _volumes(config), []
    code = options.each(args.volumes, lambda ref: out.append(vols.inspect(ref)))
    print(json.dumps(out, indent=4))
    return code


def cmd_rm(args, config) -> int:
    vols = _volumes(config)
    return options.each(args.volumes, lambda ref: vols.remove(ref, force=args.force) or ref)


def cmd_prune(args, config) -> int:
    removed, reclaimed = _volumes(config).prune(filters=options.filters(args.filter))
    if removed:
        print("Deleted Volumes:")
        for name in removed:
            print(name)
    print(f"Total reclaimed space: {reclaimed}B")
    return 0
