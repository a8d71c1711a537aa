"""Local image commands, with Docker's names and flags.

``images``, ``tag``, ``rmi``, ``save``, ``load``, ``import``, ``history``, and the
``image`` group: ``image ls|inspect|rm|prune|tag|save|load|import|history``.
Sizes are those of the layer blobs as stored (compressed), in Docker's decimal units.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime

from engine.base.space import ensure_reserve, with_reserve
from engine.errors import EngineError, InvalidArgument
from engine.images.reference import parse
from engine.images.store import Image, ImageStore


def _store(config) -> ImageStore:
    from engine.engine import Engine

    return Engine(config).images  # containers veto removing images they use


# --- formatting -----------------------------------------------------------------------


def human_size(n: int) -> str:
    """Docker's go-units HumanSize: decimal units, 3 significant digits."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.3g}{unit}"
        size /= 1000
    return f"{n}B"


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def _parse_time(stamp: str) -> float | None:
    """RFC 3339 (nanoseconds allowed, as Go writes them) to a Unix time."""
    match = _STAMP.match(stamp or "")
    if not match:
        return None
    zone = match[3] or "Z"
    text = match[1] + (match[2] or "")[:7] + ("+00:00" if zone == "Z" else zone)
    return datetime.fromisoformat(text).timestamp()


def human_ago(stamp: str, now: float | None = None) -> str:
    created = _parse_time(stamp)
    if created is None:
        return "N/A"
    seconds = max(0.0, (now or time.time()) - created)
    if seconds < 1:
        return "Less than a second ago"
    if seconds < 60:
        return f"{int(seconds)} second{'s' if int(seconds) != 1 else ''} ago"
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute ago"
    if minutes < 60:
        return f"{int(minutes)} minutes ago"
    hours = minutes / 60
    if hours < 2:
        return "About an hour ago"
    if hours < 48:
        return f"{int(hours)} hours ago"
    days = hours / 24
    if days < 14:
        return f"{int(days)} days ago"
    if days < 60:
        return f"{int(days / 7)} weeks ago"
    if days < 730:
        return f"{int(days / 30)} months ago"
    return f"{int(days / 365)} years ago"


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _id(image_id: str, no_trunc: bool) -> str:
    return image_id if no_trunc else image_id.removeprefix("sha256:")[:12]


# --- images / image ls ------------------------------------------------------------------


def _rows(image: Image) -> list[dict]:
    """One row per tag; an untagged image gives one row (repository from a repo digest, if any)."""
    digests = {}
    for repo_digest in image.repo_digests:
        name, _, digest = repo_digest.partition("@")
        digests.setdefault(name, digest)
    base = {"ID": image.id, "CreatedAt": image.created, "Size": image.size}
    rows = []
    for ref in image.tags:
        rows.append({**base, "Repository": ref.familiar_name, "Tag": ref.tag,
                     "Digest": digests.get(ref.familiar_name, "<none>")})
    if not rows:
        if digests:
            for name, digest in digests.items():
                rows.append({**base, "Repository": name, "Tag": "<none>", "Digest": digest})
        else:
            rows.append({**base, "Repository": "<none>", "Tag": "<none>", "Digest": "<none>"})
    return rows


def cmd_images(args, config) -> int:
    images = _store(config).list(all=args.all)
    if args.filter_reference:
        wanted = parse(args.filter_reference, default_tag=False)
        images = [i for i in images if any(t.name == wanted.name and (not wanted.tag or t.tag == wanted.tag)
                                           for t in i.tags)]
    if args.quiet:
        seen = []
        for image in images:
            short = _id(image.id, args.no_trunc)
            if short not in seen:
                seen.append(short)
                print(short)
        return 0
    rows = [row for image in images for row in _rows(image)]
    if args.format == "json":
        for row in rows:
            print(json.dumps({**row, "Size": human_size(row["Size"]), "VirtualSize": human_size(row["Size"]),
                              "CreatedSince": human_ago(row["CreatedAt"]), "ID": _id(row["ID"], args.no_trunc)}))
        return 0
    header = ["REPOSITORY", "TAG", *(["DIGEST"] if args.digests else []), "IMAGE ID", "CREATED", "SIZE"]
    table = [header]
    for row in rows:
        table.append([row["Repository"], row["Tag"], *([row["Digest"]] if args.digests else []),
                      _id(row["ID"], args.no_trunc), human_ago(row["CreatedAt"]), human_size(row["Size"])])
    _table(table)
    return 0


def _add_ls_args(parser) -> None:
    parser.add_argument("-a", "--all", action="store_true", help="show all images")
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    parser.add_argument("--digests", action="store_true", help="show digests")
    parser.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("filter_reference", nargs="?", metavar="REPOSITORY[:TAG]")
    parser.set_defaults(handler=cmd_images)


# --- inspect / history --------------------------------------------------------------------


def inspect_dict(image: Image) -> dict:
    """Kept for callers of the first version; use ``Image.inspect()``."""
    return image.inspect()


def history_rows(image: Image) -> list[dict]:
    """Kept for callers of the first version; use ``Image.history()``."""
    return image.history()


def cmd_inspect(args, config) -> int:
    store = _store(config)
    out, errors = [], []
    for name in args.images:
        try:
            out.append(store.get(name).inspect())
        except EngineError as exc:
            errors.append(str(exc))
    print(json.dumps(out, indent=4))
    for error in errors:
        print(f"Error: {error}", file=sys.stderr)
    return 1 if errors else 0


def cmd_history(args, config) -> int:
    image = _store(config).get(args.image)
    rows = image.history()
    if args.quiet:
        print(_id(image.id, args.no_trunc))
        return 0
    if args.format == "json":
        for row in rows:
            print(json.dumps(row))
        return 0
    table = [["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
    for row in rows:
        created_by = row["CreatedBy"]
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        size = human_size(row["Size"]) if args.human else str(row["Size"])
        when = human_ago(row["CreatedAt"]) if args.human else row["CreatedAt"]
        table.append([_id(row["ID"], args.no_trunc) if row["ID"] != "<missing>" else "<missing>", when,
                      created_by, size, row["Comment"]])
    _table(table)
    return 0


def _add_history_args(parser) -> None:
    parser.add_argument("-H", "--human", action=_BoolAction, default=True,
                        help="print sizes and dates in human readable format (default true)")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--no-trunc", action="store_true")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("image")
    parser.set_defaults(handler=cmd_history)


class _BoolAction(argparse.Action):
    """Accept ``-H``, ``-H=false`` and ``--human false`` like Docker's boolean flags."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs="?", const="true", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, str(values).lstrip("=").lower() not in ("false", "0", "no"))


# --- tag / rmi / prune ------------------------------------------------------------------------


def cmd_tag(args, config) -> int:
    _store(config).tag(args.source, args.target)
    return 0


def _freeing(config, action):
    """``action()`` of a command that frees space (rmi, prune): its bookkeeping is written
    before blobs go, so on a full disk it takes the engine's reserve to do it; the reserve
    is made again afterwards, when there is room."""
    root = str(config.root)
    try:
        return with_reserve(root, action)
    finally:
        ensure_reserve(root)


def cmd_rmi(args, config) -> int:
    store = _store(config)
    status = 0
    for name in args.images:
        try:
            for line in _freeing(config, lambda: store.remove(name, force=args.force)):  # noqa: B023
                print(line)
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return status


def cmd_prune(args, config) -> int:
    store = _store(config)
    ids, reclaimed = _freeing(config, lambda: store.prune(all=args.all))
    if ids:
        print("Deleted Images:")
        for image_id in ids:
            print(f"deleted: {image_id}")
        print()
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


# --- save / load / import -----------------------------------------------------------------------


def cmd_save(args, config) -> int:
    from engine.images import archive  # tar and zstd: only these commands need them

    store = _store(config)
    if args.oci_dir:
        archive.export_layout(store, args.images, args.oci_dir)
        return 0
    if args.output and args.output != "-":
        archive.save(store, args.images, args.output)
        return 0
    if sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    sys.stdout.flush()
    archive.save(store, args.images, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


def cmd_load(args, config) -> int:
    from engine.images import archive  # tar and zstd: only these commands need them

    store = _store(config)
    if args.input and args.input != "-":
        images = archive.load(store, args.input)
    else:
        if sys.stdin.isatty():
            raise InvalidArgument("requested load from stdin, but stdin is empty; use -i FILE")
        images = archive.load(store, sys.stdin.buffer)
    for image in images:
        if image.repo_tags:
            for tag in image.repo_tags:
                print(f"Loaded image: {tag}")
        else:
            print(f"Loaded image ID: {image.id}")
    return 0


def cmd_import(args, config) -> int:
    from engine.images import archive  # tar and zstd: only these commands need them

    if args.file.startswith(("http://", "https://")):
        raise InvalidArgument("importing from a URL is not supported; download the tar first")
    store = _store(config)
    source = sys.stdin.buffer if args.file == "-" else args.file
    image = archive.import_rootfs(store, source, args.reference, changes=args.change or [],
                                  message=args.message)
    print(image.id)
    return 0


# --- registration -------------------------------------------------------------------------------


def _add_tag(parser) -> None:
    parser.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    parser.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    parser.set_defaults(handler=cmd_tag)


def _add_rm(parser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.set_defaults(handler=cmd_rmi)


def _add_save(parser) -> None:
    parser.add_argument("-o", "--output", help="write to a file instead of stdout")
    parser.add_argument("--oci-dir", metavar="DIR", help="write an OCI image layout directory instead of a tar")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.set_defaults(handler=cmd_save)


def _add_load(parser) -> None:
    parser.add_argument("-i", "--input", help="read from a tar archive file (or an OCI layout directory)")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.set_defaults(handler=cmd_load)


def _add_import(parser) -> None:
    parser.add_argument("-c", "--change", action="append", help="apply a Dockerfile instruction (CMD, ENV...)")
    parser.add_argument("-m", "--message", help="commit message for the imported image")
    parser.add_argument("file", metavar="file|-")
    parser.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    parser.set_defaults(handler=cmd_import)


def _add_inspect(parser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.set_defaults(handler=cmd_inspect)


def _add_prune(parser) -> None:
    parser.add_argument("-a", "--all", action="store_true", help="remove all unused images, not just dangling")
    parser.add_argument("-f", "--force", action="store_true", help="do not prompt (there is no prompt)")
    parser.set_defaults(handler=cmd_prune)


# The top-level commands register() adds: the CLI builds only the parser a command needs.
COMMANDS = (
    "history", "image", "images", "import", "load", "rmi", "save", "tag",
)


def register(subparsers) -> None:
    _add_ls_args(subparsers.add_parser("images", help="list images"))
    _add_tag(subparsers.add_parser("tag", help="create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"))
    _add_rm(subparsers.add_parser("rmi", help="remove one or more images"))
    _add_save(subparsers.add_parser("save", help="save images to a tar archive (docker load and OCI readable)"))
    _add_load(subparsers.add_parser("load", help="load images from a tar archive or STDIN"))
    _add_import(subparsers.add_parser("import", help="import a root filesystem tar as a one-layer image"))
    _add_history_args(subparsers.add_parser("history", help="show the history of an image"))

    image = subparsers.add_parser("image", help="manage images")
    actions = image.add_subparsers(dest="image_command", metavar="ACTION", required=True)
    _add_ls_args(actions.add_parser("ls", aliases=["list"], help="list images"))
    _add_inspect(actions.add_parser("inspect", help="display detailed information on images"))
    _add_rm(actions.add_parser("rm", aliases=["remove"], help="remove one or more images"))
    _add_prune(actions.add_parser("prune", help="remove unused images"))
    _add_tag(actions.add_parser("tag", help="create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"))
    _add_save(actions.add_parser("save", help="save images to a tar archive"))
    _add_load(actions.add_parser("load", help="load images from a tar archive or STDIN"))
    _add_import(actions.add_parser("import", help="import a root filesystem tar as an image"))
    _add_history_args(actions.add_parser("history", help="show the history of an image"))

