"""System commands: ``info``; ``system df|prune|check``; ``boot`` (alias ``restore``)."""

from __future__ import annotations

import json
import sys

from engine.system import host

# The top-level commands register() adds: the CLI builds only the parser a command needs.
COMMANDS = ("info", "system", "boot", "restore")


def register(subparsers) -> None:
    info = subparsers.add_parser("info", help="show what the engine found on this host")
    info.add_argument("--format", choices=["text", "json"], default="text")
    info.set_defaults(handler=cmd_info)

    system = subparsers.add_parser("system", help="manage the engine: disk usage, prune, consistency check")
    actions = system.add_subparsers(dest="action", metavar="ACTION", required=True)
    df = actions.add_parser("df", help="show disk usage")
    df.add_argument("--format", choices=["text", "json"], default="text")
    df.set_defaults(handler=cmd_df)
    prune = actions.add_parser("prune", help="remove unused data")
    prune.add_argument("-a", "--all", action="store_true", help="remove all unused images, not just dangling ones")
    prune.add_argument("--volumes", action="store_true", help="prune volumes")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    prune.set_defaults(handler=cmd_prune)
    check = actions.add_parser("check", help="check that the store and the host agree (read only)")
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.set_defaults(handler=cmd_check)

    for name in ("boot", "restore"):
        boot = subparsers.add_parser(name, help="at host start: clean what the last boot left, "
                                                "start containers whose restart policy asks for it")
        boot.add_argument("--format", choices=["text", "json"], default="text")
        boot.set_defaults(handler=cmd_boot)


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


def cmd_df(args, config) -> int:
    from engine.cli.images import human_size
    from engine.system import gc

    rows = gc.disk_usage(config)
    if args.format == "json":
        for row in rows:
            print(json.dumps(row.as_dict()))
        return 0
    print(f"{'TYPE':<16}{'TOTAL':<10}{'ACTIVE':<10}{'SIZE':<10}RECLAIMABLE")
    for row in rows:
        reclaimable = human_size(row.reclaimable)
        if row.size:
            reclaimable += f" ({round(row.reclaimable * 100 / row.size)}%)"
        print(f"{row.kind:<16}{row.total:<10}{row.active:<10}{human_size(row.size):<10}{reclaimable}")
    return 0


def cmd_prune(args, config) -> int:
    from engine.cli.images import human_size
    from engine.system import gc

    if not args.force:
        what = ["all stopped containers", "all networks not used by at least one container"]
        if args.volumes:
            what.append("all volumes not used by at least one container")
        what.append("all images without at least one container associated to them" if args.all
                    else "all dangling images")
        what.append("unused build cache")
        print("WARNING! This will remove:")
        for line in what:
            print(f"  - {line}")
        print()
        print("Are you sure you want to continue? [y/N] ", end="", flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    result = gc.prune(config, all=args.all, volumes=args.volumes)
    for title, items, prefix in (("Deleted Containers:", result.containers, ""),
                                 ("Deleted Networks:", result.networks, ""),
                                 ("Deleted Volumes:", result.volumes, ""),
                                 ("Deleted Images:", result.images, "deleted: ")):
        if items:
            print(title)
            for item in items:
                print(prefix + item)
            print()
    print(f"Total reclaimed space: {human_size(result.reclaimed)}")
    return 0


def cmd_check(args, config) -> int:
    from engine.system import check

    problems = check.run(config)
    if args.format == "json":
        print(json.dumps({"problems": problems}, indent=2))
    else:
        for problem in problems:
            print(f"problem: {problem}")
        print(check.summary(problems))
    return 1 if problems else 0


def cmd_boot(args, config) -> int:
    from engine.system import boot

    report = boot.boot(config)
    if args.format == "json":
        print(boot.dumps(report))
    else:
        for line in report.cleaned:
            print(f"cleaned: {line}")
        for name in report.started:
            print(f"started: {name}")
        for name, error in report.failed.items():
            print(f"failed: {name}: {error}", file=sys.stderr)
    return 1 if report.failed else 0
