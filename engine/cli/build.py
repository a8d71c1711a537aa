"""Image-making commands: ``build``, ``commit``; files: ``cp``, ``export``."""

from __future__ import annotations

import sys

from engine.cli import _options as options
from engine.errors import InvalidArgument


def _containers(config):
    from engine.engine import Engine

    return Engine(config).containers


# The top-level commands register() adds: the CLI builds only the parser a command needs.
COMMANDS = (
    "build", "commit", "cp", "export",
)


def register(subparsers) -> None:
    p = subparsers.add_parser("build", help="build an image from a Dockerfile")
    p.add_argument("-t", "--tag", action="append", default=[])
    p.add_argument("-f", "--file", default="Dockerfile")
    p.add_argument("--build-arg", action="append", default=[])
    p.add_argument("--target")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--network", default="bridge", help="network of the RUN steps (default bridge)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("context", help="a directory, a tar file, or - (a tar on stdin)")
    p.set_defaults(handler=cmd_build)
    p = subparsers.add_parser("commit", help="create an image from a container's changes")
    p.add_argument("-m", "--message")
    p.add_argument("-a", "--author")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-p", "--pause", action="store_true", default=True)
    p.add_argument("--no-pause", dest="pause", action="store_false")
    p.add_argument("container")
    p.add_argument("repository", nargs="?")
    p.set_defaults(handler=cmd_commit)
    p = subparsers.add_parser("cp", help="copy files between a container and the host (or a tar on stdio)")
    p.add_argument("source", help="CONTAINER:PATH, a host path, or -")
    p.add_argument("dest", help="CONTAINER:PATH, a host path, or -")
    p.set_defaults(handler=cmd_cp)
    p = subparsers.add_parser("export", help="export a container's filesystem as a tar")
    p.add_argument("-o", "--output")
    p.add_argument("container")
    p.set_defaults(handler=cmd_export)


def cmd_build(args, config) -> int:
    from engine.build.builder import build

    def show(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    context = sys.stdin.buffer if args.context == "-" else args.context
    build_args = options.pairs(args.build_arg, what="build-arg", from_env=True)
    image = build(config, context, args.file, tags=args.tag, build_args=build_args,
                  target=args.target, labels=options.pairs(args.label, from_env=True), on_line=show, no_cache=args.no_cache,
                  network=args.network)
    if args.quiet:
        print(image.id)
    return 0


def cmd_commit(args, config) -> int:
    from engine.build.commit import commit

    image = commit(_containers(config), args.container, args.repository, message=args.message,
                   author=args.author, changes=args.change, pause=args.pause)
    print(image.id)
    return 0


def _split(text: str) -> tuple[str | None, str]:
    if text == "-" or text.startswith(("/", ".")) or ":" not in text:
        return None, text
    container, _, path = text.partition(":")
    return container, path


def cmd_cp(args, config) -> int:
    from engine.build import commit

    src_container, src = _split(args.source)
    dst_container, dst = _split(args.dest)
    containers = _containers(config)
    if (src_container is None) == (dst_container is None):
        raise InvalidArgument("copying between containers or between host paths is not supported: "
                              "one side must be CONTAINER:PATH")
    if src_container is not None:
        if dst == "-":
            commit.copy_from(containers, src_container, src, sys.stdout.buffer)
        else:
            commit.copy_out(containers, src_container, src, dst)
    elif src == "-":
        commit.copy_to(containers, dst_container, dst, sys.stdin.buffer)
    else:
        commit.copy_in(containers, dst_container, src, dst)
    return 0


def cmd_export(args, config) -> int:
    from engine.build.commit import export

    if args.output:
        with open(args.output, "wb") as out:
            export(_containers(config), args.container, out)
    else:
        if sys.stdout.isatty():
            raise InvalidArgument("refusing to write a tar to a terminal: use -o FILE or redirect")
        export(_containers(config), args.container, sys.stdout.buffer)
    return 0
