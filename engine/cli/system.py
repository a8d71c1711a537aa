"""System commands: ``info``."""

from __future__ import annotations

import json

from engine import host

# The top-level commands register() adds: the CLI builds only the parser a command needs.
COMMANDS = ("info",)


def register(subparsers) -> None:
    info = subparsers.add_parser("info", help="show what the engine found on this host")
    info.add_argument("--format", choices=["text", "json"], default="text")
    info.set_defaults(handler=cmd_info)


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


def cmd_info(args, config) -> int:
    facts = host.facts(config)
    if args.format == "json":
        print(json.dumps(facts, indent=2))
        return 0
    print(f"Runtime:        {facts['runtime'] or 'none works'} {facts['runtime_version'] or ''}".rstrip())
    for runtime in facts["runtimes"]:
        status = "works" if runtime["works"] else f"unusable: {runtime['error']}"
        print(f"  {runtime['name']:<6} {runtime['version'] or '-':<14} {status}")
    overlay = "yes" if facts["overlayfs"] else f"no ({facts['overlayfs_error']})"
    print(f"Overlayfs:      {overlay}")
    print(f"Storage driver: {facts['storage_driver']}")
    print(f"Storage root:   {facts['storage_root']}")
    print(f"Free space:     {_human_bytes(facts['storage_free_bytes'])}"
          f" of {_human_bytes(facts['storage_total_bytes'])}")
    print(f"Kernel:         {facts['kernel']} ({facts['architecture']})")
    print(f"Cgroups:        {facts['cgroup_mode']}")
    return 0
