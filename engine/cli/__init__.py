"""``python -m engine``: a command line with the Docker user's verbs.

Each module in this package covers one area and exposes
``register(subparsers)``, which adds its commands. A command's handler is set
with ``parser.set_defaults(handler=func)``; ``func(args, config)`` returns the
exit code (or None for 0). Modules are discovered, so adding an area never
touches this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from engine.config import EngineConfig
from engine.errors import EngineError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description="Berth's embedded container engine.",
    )
    parser.add_argument("--root", help="storage root (default $BERTH_ENGINE_ROOT or /var/lib/berth)")
    parser.add_argument("--run-root", help="runtime state (default $BERTH_ENGINE_RUN or /run/berth)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


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
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args, config_from_args(args)) or 0
    except EngineError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
