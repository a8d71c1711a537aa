"""``python -m engine``: a command line with the Docker user's verbs.

Each module in this package covers one area and exposes ``COMMANDS`` (its top-level
command names) and ``register(subparsers)``, which adds those commands. A command's
handler is set with ``parser.set_defaults(handler=func)``; ``func(args, config)`` returns
the exit code (or None for 0). Modules are discovered, so adding an area never touches
this file. Only the module that owns the command given is registered: building every
parser costs more than a short command itself (argparse looks up translations for each).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from engine.config import EngineConfig
from engine.errors import EngineError, from_os_error
from engine.supervisor.cliclient import command_in


def command_modules() -> list:
    here = os.path.dirname(__file__)
    names = sorted(name[:-3] for name in os.listdir(here) if name.endswith(".py") and not name.startswith("_"))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only what ``command`` needs when a module owns it."""
    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description="Berth's embedded container engine.",
    )
    parser.add_argument("--root", help="storage root (default $BERTH_ENGINE_ROOT or /var/lib/berth)")
    parser.add_argument("--run-root", help="runtime state (default $BERTH_ENGINE_RUN or /run/berth)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = command_modules()
    owners = [module for module in modules if command in module.COMMANDS]
    for module in owners or modules:
        module.register(subparsers)
    return parser


_BUILT: dict[str, argparse.ArgumentParser] = {}


def build_parsers() -> None:
    """Every command's parser, kept for ``main`` (the command server builds them once)."""
    for module in command_modules():
        for command in module.COMMANDS:
            _BUILT[command] = build_parser(command)


def config_from_args(args: argparse.Namespace) -> EngineConfig:
    config = EngineConfig.from_env()
    if args.root or args.run_root:
        from pathlib import Path

        config = EngineConfig(
            root=Path(args.root) if args.root else config.root,
            run_root=Path(args.run_root) if args.run_root else config.run_root,
        )
    return config


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = command_in(argv)
    parser = _BUILT.get(command) or build_parser(command)
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    config = config_from_args(args)
    try:
        return handler(args, config) or 0
    except EngineError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, above all: one line, never a traceback
        if isinstance(exc, BrokenPipeError):
            return 1
        print(f"Error: {from_os_error(exc, config.root)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
